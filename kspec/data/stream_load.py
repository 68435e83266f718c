"""``load_data`` for streamed sources: checks on each split's first rows, fraction splits by
hashing, group ids packed batch by batch.

What is checked before training: the source's structure when it is read (every file is an
image; every TFRecord record parses against the spec's feature description; every CSV
chunk converts), the inputs' shapes and dtypes, and the values of the first
:data:`~kspec.data.stream.HEAD_ROWS` rows of every split (NaN/inf, labels against the loss,
group ids), named as in-memory data is. The statistics pass then checks every training row
it reads (:func:`kspec.data.preprocess.fit_streamed`).
"""

from __future__ import annotations

from typing import Any

from kspec.data.checks import check_inputs, check_labels, check_splits
from kspec.data.split import Data, Split
from kspec.data.stream import StreamSplit, refuse
from kspec.errors import DataError, SpecError
from kspec.spec import Spec


def _checker(spec: Spec, label: str, meta: dict, name: str):
    """``check(block, row_names)``: the in-memory checks on one block of a split's rows."""
    from kspec.data.groups import check_group_ids

    def check(block: Split, row_names: Any) -> None:
        seen = {**meta, "row_names": row_names}
        part = {name: block}
        if block.x:
            check_splits(part, label, seen)
        check_labels(spec, part, label, seen)
        if spec.data.groups is not None and block.groups is not None:
            check_group_ids(spec, part, label, seen)

    return check


def _check_heads(spec: Spec, parts: dict[str, StreamSplit], label: str, meta: dict) -> None:
    for name, part in parts.items():
        head, keys = part.head_with_keys()
        seen = {**meta, "row_names": keys} if keys else meta
        check_splits({name: head}, label, seen)
        check_inputs(spec, {name: head}, label)
        check_labels(spec, {name: head}, label, seen)
        groups = spec.data.groups
        if groups is not None:
            from kspec.data.groups import check_group_ids

            if head.groups is None:
                raise DataError(f"{label}: data.groups names the {groups.where()}, but the "
                                f"{name} data came without it")
            check_group_ids(spec, {name: head}, label, seen)


def _carve(spec: Spec, parts: dict[str, StreamSplit]) -> dict[str, StreamSplit | None]:
    s = spec.data.splits
    for name in ("validation", "test"):
        if name in parts and getattr(s, name) > 0:
            raise SpecError(f"data.splits.{name}", f"the source already has a {name} split; "
                            "a fraction would carve a second one", value=getattr(s, name))
    pool = parts["all"] if "all" in parts else parts["train"]
    val = s.validation if "validation" not in parts else 0.0
    test = s.test if "test" not in parts else 0.0
    if val or test or "all" in parts:
        carved = pool.carve(val, test, shuffle=s.shuffle, stratify=s.stratify, seed=spec.seed)
    else:
        carved = {"train": pool}
    out = {name: parts[name] if name in parts else carved.get(name)
           for name in ("validation", "test")}
    return {"train": carved["train"], **out}


def _packer(source: str):
    """A batch transform: the group ids appended to the labels as their last column (what
    ``pack_groups`` does to arrays)."""
    import tensorflow as tf

    def pack(element: dict) -> dict:
        y = element.get("y")
        if y is None:
            raise DataError(f"{source}: groups are packed with the labels, but the data has "
                            "none")
        key = None
        if isinstance(y, dict):
            if len(y) != 1:
                raise SpecError("data.groups", "groups need a model with one output; the "
                                f"labels are given for {sorted(y)}", valid="one label column")
            (key, y), = y.items()
        y = tf.cast(y, tf.float32)
        y = y[:, None] if y.shape.rank == 1 else y
        packed = tf.concat([y, tf.cast(element["groups"], tf.float32)[:, None]], axis=1)
        out = dict(element)
        out["y"] = {key: packed} if key is not None else packed
        return out

    return pack


def load_streamed(spec: Spec, parts: dict[str, StreamSplit], label: str,
                  meta: dict[str, Any]) -> Data:
    """The train / validation / test streams of a source, checked as far as can be done
    without reading all of it (see the module's docstring)."""
    if spec.data.fit_test_separately:
        raise refuse("data.fit_test_separately", "refitting the test split's statistics",
                     "false, or stream: false")
    for name, part in parts.items():
        part.prepare(_checker(spec, label, meta, name))
    _check_heads(spec, parts, label, meta)
    splits = _carve(spec, parts)
    data = Data(splits["train"], splits["validation"], splits["test"], label, meta)
    total = sum(len(p) for p in parts.values())
    for name, split in data.splits().items():
        if len(split) == 0:
            raise DataError(f"{label}: the {name} split is empty after splitting {total} rows")
    if spec.data.groups is not None:
        from kspec.data.groups import group_names

        names = group_names(spec.data.groups)
        if names:
            meta["group_names"] = names
        for name, split in data.splits().items():
            setattr(data, name, split.with_transform(_packer(f"{label} ({name} split)")))
    return data
