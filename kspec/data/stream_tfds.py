"""TFDS splits read as tf.data pipelines: ``source: {type: tfds, stream: true}``.

The split is read in TFDS's own order (``shuffle_files=False``, so each example keeps its
index, the key its fraction split is hashed from) and mixed through a bounded shuffle
buffer each epoch. Nothing is read before training but the first rows of each split (the
row counts come from TFDS); the statistics pass checks every training example.

Example:
    >>> parts, label, meta = read_tfds(src, ["image"], "data.source")  # doctest: +SKIP
    >>> type(parts["train"]).__name__  # doctest: +SKIP
    'TfdsStream'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kspec.data.stream import (
    StreamSplit,
    text_key,
    unit_hash_tf,
)
from kspec.data.tfds import feature_mapping
from kspec.errors import DataError, SpecError


class TfdsStream(StreamSplit):
    """One TFDS split string (or the examples of it whose index falls in ``selection``)."""

    def __init__(self, dataset: Any, split_string: str, mapping: dict[str, str],
                 labels: dict[Any, str], source: str, shuffle_buffer: int,
                 where: str) -> None:
        spec = dataset.element_spec
        inputs = {}
        for name, key in mapping.items():
            shape = spec[key].shape
            if not shape.is_fully_defined():
                raise SpecError(f"{where}.inputs", f"feature {key!r} has shape {shape} per "
                                "example; a streamed split needs a fixed shape (stream: false "
                                "reads it into memory)", value=key)
            inputs[name] = (tuple(shape), spec[key].dtype.name)
        super().__init__(source, 0, inputs, labelled=bool(labels))
        self.base, self.split_string = dataset, split_string
        self.mapping, self.label_keys, self.shuffle_buffer = mapping, labels, shuffle_buffer
        self.file_key = text_key(split_string)
        self.total = self._cardinality()
        self.length = self.total
        self.selection: tuple | None = None

    def _cardinality(self) -> int:
        n = int(self.base.cardinality())
        if n >= 0:
            return n
        return int(self.base.reduce(np.int64(0), lambda count, _: count + 1))

    def carve(self, validation, test, *, shuffle, stratify, seed):
        return self._carve_rows(
            self.total, validation, test, shuffle=shuffle, stratify=stratify, seed=seed,
            hashed="a streamed TFDS split is divided by a hash of each example's index",
            instead="TFDS split strings per split")

    def _elements(self, batch_size, *, shuffle, seed, keys=False, labels_only=False,
                  drop_remainder=False):
        import tensorflow as tf

        sel = self.selection
        ds = self.base.enumerate()
        if sel is not None and sel[0] == "position":
            ds = ds.filter(lambda i, d: (i >= sel[1]) & (i < sel[2]))
        elif sel is not None:
            ds = ds.filter(lambda i, d: (lambda u: (u >= sel[1]) & (u < sel[2]))(
                unit_hash_tf(self.file_key, i, sel[3])))
        if shuffle:
            ds = ds.shuffle(self.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        mapping = {} if labels_only else self.mapping
        label_keys = self.label_keys

        def element(i, d):
            out: dict[str, Any] = {"x": {name: d[key] for name, key in mapping.items()}}
            if label_keys:
                ys = {o: d[k] for o, k in label_keys.items()}
                out["y"] = ys[None] if None in ys else ys
            if keys:
                out["key"] = tf.strings.join(["example ", tf.strings.as_string(i)])
            return out

        ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(batch_size, drop_remainder=drop_remainder)


def tfds_streams(src: Any, splits: dict[str, str], datasets: list, info: Any,
                 input_names: list[str], where: str):
    """``{split: TfdsStream}`` over the loaded (not read) TFDS datasets."""
    out, meta = {}, {}
    for name, ds in zip(splits, datasets):
        mapping, labels = feature_mapping(src, ds.element_spec, input_names, where)
        label = f"tfds:{src.name}" + ("" if name == "all" else f" ({name} split)")
        out[name] = TfdsStream(ds, splits[name], mapping, labels, label, src.shuffle_buffer,
                               where)
        if out[name].total == 0:
            raise DataError(f"tfds:{src.name}: split {splits[name]!r} is empty")
    if isinstance(src.label, str):
        names = getattr(info.features[src.label], "names", None)
        if names:
            meta["class_names"] = list(names)
    return out, f"tfds:{src.name}", meta
