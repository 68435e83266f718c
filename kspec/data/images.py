"""Image folders: one sub-folder per class, decoded in parallel with tf.data.

The decoded images are held in memory as ``uint8`` (a quarter of float32), which suits the
small and medium datasets kspec targets; the model's input layer casts them to float.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kspec.data.split import Split
from kspec.errors import DataError, SpecError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _list_images(root: Path, classes: list[str] | None, where: str):
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    if classes is None:
        classes = found
    else:
        for i, name in enumerate(classes):
            if name not in found:
                raise SpecError(f"{where}.classes[{i}]", f"{root} has no folder {name!r}",
                                valid=found)
    if not classes:
        raise DataError(f"{root}: no class folders (expected one sub-folder per class)")
    files, labels = [], []
    for label, name in enumerate(classes):
        images = sorted(str(p) for p in (root / name).iterdir()
                        if p.suffix.lower() in EXTENSIONS)
        if not images:
            raise DataError(f"{root}: class folder {name!r} has no images "
                            f"(looked for {', '.join(EXTENSIONS)})")
        files += images
        labels += [label] * len(images)
    return files, np.asarray(labels, dtype="int64"), classes


def _decode_all(files: list[str], size: list[int], channels: int) -> np.ndarray:
    import tensorflow as tf

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)
        image = tf.image.resize(image, size)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    ds = (tf.data.Dataset.from_tensor_slices(files)
          .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .batch(512).prefetch(tf.data.AUTOTUNE))
    return np.concatenate(list(ds.as_numpy_iterator()))


def _find_bad_image(files: list[str]) -> tuple[str, str]:
    from PIL import Image

    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
        except Exception as e:  # noqa: BLE001 - any failure names the culprit
            return f, f"{type(e).__name__}: {e}"
    return files[0], "unknown decode error"


BUNDLED_PREFIX = "bundled:"


def resolve_folder(path: str) -> Path:
    """A folder on disk, or ``bundled:NAME`` for an image folder shipped with kspec."""
    if path.startswith(BUNDLED_PREFIX):
        from importlib import resources

        return Path(str(resources.files("kspec.datasets").joinpath(path[len(BUNDLED_PREFIX):])))
    return Path(path).expanduser()


def image_folders(src: Any, input_names: list[str], where: str):
    """The folders of an ``image_folder`` source, checked (one input, each folder there):
    ``(split, path, root, files, labels, classes)`` per folder (``split`` is "all" for one
    folder), the class names so far growing as folders are listed."""
    if len(input_names) != 1:
        raise SpecError(where, f"an image folder feeds one input; the model has {input_names}")
    paths = {"all": src.path} if isinstance(src.path, str) else dict(src.path)
    classes = src.classes
    for split, p in paths.items():
        root = resolve_folder(p)
        if not root.is_dir():
            key = f"{where}.path" + ("" if split == "all" else f".{split}")
            raise SpecError(key, f"folder not found: {p}")
        files, labels, classes = _list_images(root, classes, where)
        yield split, p, root, files, labels, classes


def read_image_folder(src: Any, input_names: list[str], where: str, groups: Any = None,
                      categorical: Any = None):
    """``{split: Split}`` with ``uint8`` images ``(n, h, w, c)`` and integer labels (with
    ``stream: true``, streamed splits: :mod:`kspec.data.stream_images`)."""
    import tensorflow as tf

    if src.stream:
        from kspec.data.stream_images import read_image_stream

        return read_image_stream(src, input_names, where, groups, categorical)

    channels = 1 if src.color_mode == "grayscale" else 3
    out, classes, paths = {}, src.classes, []
    for split, p, root, files, labels, classes in image_folders(src, input_names, where):
        paths.append(p)
        try:
            x = _decode_all(files, list(src.image_size), channels)
        except tf.errors.OpError as e:
            bad, why = _find_bad_image(files)
            raise DataError(f"{root}: cannot decode image {bad} ({why})") from e
        out[split] = Split({input_names[0]: x}, labels)
    return out, ", ".join(paths), {"class_names": list(classes)}
