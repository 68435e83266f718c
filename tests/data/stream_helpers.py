"""Small generated image folders and TFRecord files for the streaming tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buf, "PNG")
    return buf.getvalue()


def image(label: int, rng: np.random.Generator, size: int = 8) -> np.ndarray:
    """A noisy grey image whose brightness says its class (no constant pixel)."""
    return (rng.integers(0, 60, (size, size, 1)) + 70 * label).astype("uint8")


def image_folder(root: Path, per_class: int = 10, classes: int = 3, seed: int = 0) -> Path:
    """``root/c0/*.png, root/c1/*.png, ...``: 8x8 grey PNGs."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"c{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (folder / f"{i:03d}.png").write_bytes(png_bytes(image(c, rng)))
    return root


def feature(value) -> "object":
    import tensorflow as tf

    value = np.atleast_1d(value)
    if value.dtype.kind in "SO" or isinstance(value[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(value)))
    if value.dtype.kind in "iub":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=value.tolist()))
    return tf.train.Feature(float_list=tf.train.FloatList(value=value.tolist()))


def example(**features) -> bytes:
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(
        feature={k: feature(v) for k, v in features.items()})).SerializeToString()


def records(folder: Path, files: int = 3, per_file: int = 12, seed: int = 0,
            bad: dict | None = None) -> Path:
    """``folder/part-K.tfrecord``: a PNG ``image``, an int ``label`` (0..2), a float
    ``stats`` pair and an int ``group``; ``bad={(file, record): {key: value}}`` overrides
    features of single records (a value of None drops the key)."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = 0
    for f in range(files):
        with tf.io.TFRecordWriter(str(folder / f"part-{f}.tfrecord")) as writer:
            for r in range(per_file):
                label = k % 3
                pixels = image(label, rng)
                feats = {"image": png_bytes(pixels), "label": np.int64(label),
                         "stats": np.array([pixels.mean(), pixels.std()], "float32"),
                         "group": np.int64(k % 2)}
                for key, value in ((bad or {}).get((f, r)) or {}).items():
                    if value is None:
                        feats.pop(key)
                    else:
                        feats[key] = value
                writer.write(example(**feats))
                k += 1
    return folder
