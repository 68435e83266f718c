"""Targets of each output, derived from the data's label (multi-task on one label array).

A multi-output model trains on one target per output. Data with one label array gets it
copied to every output, transformed as ``training.targets.<output>`` says (``label_map``,
``threshold`` or ``column``); data whose labels are already a dict keyed by output name is
used as it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kspec.errors import DataError, SpecError


def derive(y: np.ndarray, target: Any, output: str, where: str) -> np.ndarray:
    """One output's target from the label array ``y``."""
    path = f"training.targets.{output}"
    if target is None:
        return y
    if target.label_map is not None:
        table = np.asarray(target.label_map, dtype="float32")
        if y.dtype.kind not in "iub" and not np.all(np.mod(y, 1) == 0):
            raise DataError(f"{where}: label_map for output {output!r} needs integer labels; "
                            f"row 0 has {y.flat[0]!r}")
        idx = y.astype("int64")
        bad = np.flatnonzero((idx < 0) | (idx >= len(table)))
        if len(bad):
            raise SpecError(f"{path}.label_map", f"label {idx.flat[bad[0]]} (row {bad[0]} of "
                            f"{where}) has no entry in a label_map of length {len(table)}",
                            valid=f"one entry per class 0..{int(idx.max())}")
        mapped = table[idx]
        return mapped.astype("int64") if np.all(np.mod(table, 1) == 0) else mapped
    if target.threshold is not None:
        return (y > target.threshold).astype("float32")
    if target.column is not None:
        if y.ndim != 2 or target.column >= y.shape[1]:
            raise SpecError(f"{path}.column", f"the labels of {where} have shape {y.shape}; "
                            f"there is no column {target.column}", value=target.column)
        return y[:, target.column]
    return y


def apply_targets(spec: Any, data: Any) -> Any:
    """``data`` with per-output targets for a multi-output model (or a transformed label).

    Example:
        >>> data = apply_targets(spec, load_data(spec))  # doctest: +SKIP
        >>> sorted(data.train.y)  # doctest: +SKIP
        ['parity', 'digit']
    """
    outputs = spec.model.output_names()
    targets = spec.training.targets
    for name in targets:
        if name not in outputs:
            raise SpecError(f"training.targets.{name}", f"the model has no output {name!r}",
                            valid=outputs)
    if len(outputs) == 1 and not targets:
        return data
    splits = {}
    for split_name, split in data.splits().items():
        where = f"{data.source} ({split_name} split)"
        if getattr(split, "streamed", False):  # kspec.data.stream: derived batch by batch
            splits[split_name] = _stream_targets(split, outputs, targets, where)
            continue
        y = split.y
        if y is None:
            splits[split_name] = split
            continue
        if isinstance(y, dict):
            missing = [o for o in outputs if o not in y]
            if missing:
                raise DataError(f"{where}: the labels are a dict with keys {sorted(y)} but the "
                                f"model also has output(s) {missing}")
            new_y = {o: derive(np.asarray(y[o]), targets.get(o), o, where) for o in outputs}
        elif len(outputs) == 1:
            new_y = derive(np.asarray(y), targets.get(outputs[0]), outputs[0], where)
        else:
            new_y = {o: derive(np.asarray(y), targets.get(o), o, where) for o in outputs}
        splits[split_name] = dataclasses.replace(split, y=new_y)
    if len(outputs) == 1:
        _check_labels(spec, splits, data)
    return dataclasses.replace(data, **splits)


def _check_labels(spec: Any, splits: dict, data: Any) -> None:
    """The data module's label check (range against the loss), on the derived targets (of
    a streamed split's first rows)."""
    from kspec.data.checks import check_labels

    splits = {k: v.head() if getattr(v, "streamed", False) else v for k, v in splits.items()}
    check_labels(spec, splits, f"{data.source} (targets derived per training.targets)",
                 data.meta)


def derive_tf(y: Any, target: Any) -> Any:
    """:func:`derive` on a batch tensor inside a tf.data pipeline."""
    import tensorflow as tf

    if target is None:
        return y
    if target.label_map is not None:
        table = np.asarray(target.label_map, dtype="float32")
        mapped = tf.gather(tf.constant(table), tf.cast(y, tf.int64))
        return tf.cast(mapped, tf.int64) if np.all(np.mod(table, 1) == 0) else mapped
    if target.threshold is not None:
        return tf.cast(tf.cast(y, tf.float64) > target.threshold, tf.float32)
    if target.column is not None:
        return y[:, target.column]
    return y


def _stream_targets(split: Any, outputs: list[str], targets: dict, where: str) -> Any:
    """A streamed split whose batches carry the derived targets; the first rows are derived
    in NumPy first, so a label_map or column that does not fit is refused before training."""
    if not split.labelled:
        return split
    head = split.head().y
    if isinstance(head, dict):
        missing = [o for o in outputs if o not in head]
        if missing:
            raise DataError(f"{where}: the labels are a dict with keys {sorted(head)} but the "
                            f"model also has output(s) {missing}")
    for o in outputs:
        derive(np.asarray(head[o] if isinstance(head, dict) else head), targets.get(o), o,
               where)

    def transform(element: dict) -> dict:
        y = element["y"]
        out = dict(element)
        if isinstance(y, dict):
            out["y"] = {o: derive_tf(y[o], targets.get(o)) for o in outputs}
        elif len(outputs) == 1:
            out["y"] = derive_tf(y, targets.get(outputs[0]))
        else:
            out["y"] = {o: derive_tf(y, targets.get(o)) for o in outputs}
        return out

    return split.with_transform(transform)
