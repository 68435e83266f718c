"""Image folders streamed from disk: file paths in memory, pixels decoded as they are used.

``source: {type: image_folder, stream: true}`` lists the files (one sub-folder per class, as
the in-memory reader does) and decodes them in a parallel tf.data map every epoch; the
paths are shuffled with a fresh seeded permutation each epoch, so the order is as random as
an in-memory shuffle. ``cache: FOLDER`` keeps the decoded images of each split in a cache
file there after the first epoch (then shuffled through a bounded buffer).

Example:
    >>> from kspec.spec.sources import ImageFolderSource  # doctest: +SKIP
    >>> src = ImageFolderSource(type="image_folder", path="bundled:digit_images",
    ...                         image_size=[8, 8], color_mode="grayscale", stream=True)
    >>> parts, label, meta = read_image_stream(src, ["image"], "data.source")  # doctest: +SKIP
    >>> len(parts["all"])  # doctest: +SKIP
    400
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kspec.data.image_headers import HEAD_BYTES, JPEG_PREFIX, image_size, is_jpeg
from kspec.data.images import _find_bad_image, image_folders
from kspec.data.split import Split
from kspec.data.stream import (
    SHUFFLE_BUFFER,
    RowNames,
    StreamSplit,
    epoch_order,
    text_key,
    unit_hash,
)
from kspec.errors import DataError

log = logging.getLogger("kspec.data")

# The first bytes of the formats tf.io.decode_image reads.
_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP"}


def check_images(files: list[str], root: Path, size: tuple[int, int]) -> bool:
    """Refuse, by name, a file that is not an image at all (empty, text, another format),
    reading only its first bytes, so a folder of a million images is checked in seconds.

    Returns whether every header says the image already has ``size`` (height, width): then
    the pipeline decodes without a size check per image.
    """
    sized = True
    for f in files:
        try:
            with open(f, "rb") as handle:
                head = handle.read(HEAD_BYTES)
                if sized and is_jpeg(head):
                    head += handle.read(JPEG_PREFIX)
        except OSError as e:
            raise DataError(f"{root}: cannot read image {f} ({e.strerror or e})") from e
        if not any(head.startswith(m) for m in _MAGIC):
            what = "the file is empty" if not head else f"it starts with {head[:8]!r}"
            raise DataError(f"{root}: cannot decode image {f} (not a PNG, JPEG, GIF or BMP "
                            f"image: {what})")
        sized = sized and image_size(head) == tuple(size)
    return sized


def decode_image(path: Any, size: tuple[int, int], channels: int, resize: bool = True) -> Any:
    """One image file as ``uint8 (height, width, channels)``: decoded, and resized only when
    its size differs (as the in-memory reader resizes: bilinear, rounded); with ``resize``
    false every image must have the size already (its header said so)."""
    import tensorflow as tf

    return decode_bytes(tf.io.read_file(path), size, channels, resize=resize)


def decode_bytes(data: Any, size: tuple[int, int], channels: int,
                 encoding: str = "image", resize: bool = True) -> Any:
    """:func:`decode_image` of the encoded bytes ``data`` (``png``, ``jpeg`` or any
    ``image`` format ``tf.io.decode_image`` reads)."""
    import tensorflow as tf

    if encoding == "png":
        image = tf.io.decode_png(data, channels=channels)
    elif encoding == "jpeg":
        image = tf.io.decode_jpeg(data, channels=channels)
    else:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    if not resize:
        return tf.ensure_shape(image, [size[0], size[1], channels])
    image.set_shape([None, None, channels])

    def resized():
        out = tf.image.resize(image, size)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.constant(size, tf.int32)))
    image = tf.cond(same, lambda: tf.cast(image, tf.uint8), resized)
    return tf.ensure_shape(image, [size[0], size[1], channels])


_STARTED = time.time()


def _drop_stale_lock(prefix: Path) -> None:
    """Remove what an interrupted run left while writing the cache ``prefix`` (a lock file
    made before this process started, and its partial data): tf.data refuses to cache
    while the lock exists. One run at a time may use a cache folder."""
    for lock in prefix.parent.glob(f"{prefix.name}_*.lockfile"):
        if lock.stat().st_mtime >= _STARTED:
            continue
        log.warning("removing %s, left by an interrupted run that was caching images", lock)
        for partial in prefix.parent.glob(f"{lock.name[:-len('.lockfile')]}.data-*"):
            partial.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


class ImageFolderStream(StreamSplit):
    """The files of one split of an image folder, with their labels."""

    def __init__(self, source: str, root: Path, files: list[str], labels: np.ndarray,
                 input_name: str, size: tuple[int, int], channels: int,
                 cache: str | None = None, split: str = "all", sized: bool = False) -> None:
        super().__init__(source, len(files), {input_name: ((*size, channels), "uint8")})
        self.sized = sized  # every header gave the size: no per-image check and resize
        self.root, self.files, self.labels_ = root, list(files), np.asarray(labels, "int64")
        self.input_name, self.size, self.channels = input_name, tuple(size), channels
        self.cache, self.split = cache, split

    def _cache_file(self) -> str | None:
        if self.cache is None:
            return None
        folder = Path(self.cache).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{self.source}: cannot make the cache folder {folder} "
                            f"({e.strerror or e})") from e
        # Named after what it holds: other files, sizes or channels get a cache of their own.
        digest = hashlib.blake2b(digest_size=8)
        for part in (*self.files, repr((self.size, self.channels, self.labels_.tolist()))):
            digest.update(part.encode("utf-8") + b"\0")
        prefix = folder / f"{self.split}-{digest.hexdigest()}"
        _drop_stale_lock(prefix)
        return str(prefix)

    def _elements(self, batch_size, *, shuffle, seed, keys=False, labels_only=False,
                  drop_remainder=False):
        import tensorflow as tf

        paths = tf.constant(self.files)
        labels = tf.constant(self.labels_)
        if labels_only:
            ds = tf.data.Dataset.from_tensor_slices({"x": {}, "y": labels})
            return ds.batch(batch_size, drop_remainder=drop_remainder)
        name, size, channels = self.input_name, self.size, self.channels

        def load(i):
            path = tf.gather(paths, i)
            out = {"x": {name: decode_image(path, size, channels, resize=not self.sized)},
                   "y": tf.gather(labels, i)}
            if keys:
                out["key"] = path
            return out

        cache = None if keys else self._cache_file()
        if cache is None:
            ds = epoch_order(self.length, shuffle, seed).map(
                load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:
            # The cache holds one fixed seeded order; each epoch reshuffles through a buffer.
            order = np.random.default_rng(seed).permutation(self.length)
            ds = tf.data.Dataset.from_tensor_slices(order).map(
                load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache(cache)
            if shuffle:
                ds = ds.shuffle(min(SHUFFLE_BUFFER, self.length), seed=seed,
                                reshuffle_each_iteration=True)
        return ds.batch(batch_size, drop_remainder=drop_remainder)

    def prepare(self, check):
        """Every label is known from the folders: all are checked against the loss."""
        files = self.files
        check(Split({}, self.labels_), RowNames(len(files), lambda i: f"image {files[i]}"))

    def chunks(self, rows, **kwargs):
        import tensorflow as tf

        try:
            yield from super().chunks(rows, **kwargs)
        except tf.errors.OpError as e:  # a file whose header passed but whose pixels do not
            bad, why = _find_bad_image(self.files)
            raise DataError(f"{self.root}: cannot decode image {bad} ({why})") from e

    def subset(self, index: np.ndarray, split: str) -> "ImageFolderStream":
        out = copy.copy(self)
        out.files = [self.files[i] for i in index]
        out.labels_ = self.labels_[index]
        out.length = len(index)
        out.split, out.transforms, out._heads, out.statistics = split, [], {}, {}
        out.source = self.origin if split == "all" else f"{self.origin} ({split} split)"
        return out

    def carve(self, validation, test, *, shuffle, stratify, seed):
        """Exact fractions (as in memory: ``round(n * fraction)`` rows), cut from the files
        ordered by the hash of their path with the seed; per class with ``stratify``."""
        n = self.length
        if shuffle:
            rel = [str(Path(f).relative_to(self.root)) if Path(f).is_relative_to(self.root)
                   else f for f in self.files]
            u = np.array([unit_hash(text_key(r), 0, seed) for r in rel], dtype="float64")
            order = np.argsort(u, kind="stable")
        else:
            order = np.arange(n)
        groups = ([order[self.labels_[order] == c] for c in np.unique(self.labels_)]
                  if stratify else [order])
        parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
        for members in groups:
            k_test = int(round(len(members) * test))
            k_val = int(round(len(members) * validation))
            parts["test"].append(members[:k_test])
            parts["validation"].append(members[k_test:k_test + k_val])
            parts["train"].append(members[k_test + k_val:])
        out = {}
        for name, pieces in parts.items():
            index = np.sort(np.concatenate(pieces)) if pieces else np.zeros(0, int)
            if name == "train" or len(index):
                out[name] = self.subset(index, name)
        return out


def read_image_stream(src: Any, input_names: list[str], where: str, groups: Any = None,
                      categorical: Any = None):
    """``{split: ImageFolderStream}``: the listed files of each folder, checked to be images."""
    channels = 1 if src.color_mode == "grayscale" else 3
    out, classes, paths = {}, src.classes, []
    for split, p, root, files, labels, classes in image_folders(src, input_names, where):
        paths.append(p)
        sized = check_images(files, root, tuple(src.image_size))
        label = str(p) if split == "all" else f"{p} ({split} split)"
        out[split] = ImageFolderStream(label, root, files, labels, input_names[0],
                                       tuple(src.image_size), channels, src.cache, split, sized)
    return out, ", ".join(paths), {"class_names": list(classes)}
