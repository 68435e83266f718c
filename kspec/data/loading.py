"""Read data sources into arrays and split them into train / validation / test.

A source yields either one pool of rows (split by the fractions in ``data.splits``, seeded
and optionally stratified) or named splits (TFDS split strings, one file per split); a
fraction then carves a split the source lacks out of its training split.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from kspec.data.checks import check_data, check_inputs, check_labels, check_lengths, check_splits
from kspec.data.split import Arrays, Data, Split
from kspec.errors import DataError, SpecError
from kspec.registry import SOURCES
from kspec.spec import Spec
from kspec.spec.data import DataSpec

__all__ = ["Arrays", "Data", "Split", "check_data", "check_lengths", "load_data"]


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _read_source(src, input_names: list[str], path: str, groups=None, categorical=None):
    """``({split: Split}, label, meta)``; the split key ``"all"`` means "not yet split".

    The source's reader comes from ``registry.SOURCES``. Sources with columns or arrays read
    ``groups`` (``data.groups``) themselves; a group given by a feature is read later from
    the features, for every source alike.
    """
    reader = SOURCES.get(src.type, f"{path}.type").implementation()
    return reader(src, input_names, path, groups=groups, categorical=categorical)


def _as_split(value: Any, spec: Spec, where: str) -> tuple[Split, dict]:
    """Arrays / DataFrames from the Python API: ``(x, y[, w])``, ``{"x":, "y":}``, ``df``."""
    input_names = [i.name for i in spec.model.inputs]
    if isinstance(value, Split):
        return value, {}
    if isinstance(value, tuple) and len(value) in (2, 3):
        x, y, *w = value
    elif isinstance(value, Mapping) and "x" in value:
        x, y, w = value["x"], value.get("y"), [value.get("sample_weight")]
    else:
        x, y, w = value, None, []
    weight = np.asarray(w[0]) if w and w[0] is not None else None
    if _is_frame(x):
        from kspec.data.tables import read_frame

        if y is not None and hasattr(y, "to_numpy"):
            y = y.to_numpy()
        split, meta = read_frame(x, y, spec.data.source, input_names, "data.source",
                                 spec.data.groups, spec.data.categorical)
        split.sample_weight = weight
        return split, meta
    if isinstance(x, Mapping):
        xs = {k: np.asarray(v) for k, v in x.items()}
    else:
        if len(input_names) != 1:
            raise DataError(f"{where}: the model has inputs {input_names}; pass features as a "
                            "dict keyed by input name")
        xs = {input_names[0]: np.asarray(x)}
    if spec.data.categorical:
        raise SpecError("data.categorical", f"{where}: arrays have no named text columns; "
                        "pass a DataFrame", value=sorted(spec.data.categorical),
                        valid="kspec.fit(spec, data=df) or a csv source")
    y = {k: np.asarray(v) for k, v in y.items()} if isinstance(y, Mapping) else (
        None if y is None else np.asarray(y))
    groups = spec.data.groups
    if groups is not None and groups.feature is None:
        key = "column" if groups.column is not None else "array"
        raise SpecError(f"data.groups.{key}", f"{where}: arrays have no {key}s; name the "
                        "group by its feature, or pass a DataFrame", value=getattr(groups, key),
                        valid="feature: INDEX, or kspec.fit(spec, data=(x, pack_groups(y, g))) "
                        "without data.groups")
    return Split(xs, y, weight), {}


def _partition(n: int, spec: DataSpec, seed: int, y: Any, validation: float,
               test: float) -> dict[str, np.ndarray]:
    s = spec.splits
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n) if s.shuffle else np.arange(n)
    n_val, n_test = int(round(n * validation)), int(round(n * test))
    if s.stratify and (validation or test):
        if not isinstance(y, np.ndarray) or y.ndim != 1 or (
                y.dtype.kind == "f" and not np.array_equal(y, np.round(y))):
            raise SpecError("data.splits.stratify", "stratifying needs one class label per "
                            "row (integers or strings)", value=True,
                            valid="false for regression targets, one-hot or several outputs")
        parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
        for cls in np.unique(y):
            members = idx[y[idx] == cls]
            k_val = int(round(len(members) * validation))
            k_test = int(round(len(members) * test))
            parts["test"] += list(members[:k_test])
            parts["validation"] += list(members[k_test:k_test + k_val])
            parts["train"] += list(members[k_test + k_val:])
        return {k: np.sort(np.array(v, dtype=int)) if not s.shuffle
                else rng.permutation(np.array(v, dtype=int)) for k, v in parts.items()}
    return {"test": idx[:n_test], "validation": idx[n_test:n_test + n_val],
            "train": idx[n_test + n_val:]}


def _assemble(parts: dict[str, Split], spec: Spec) -> dict[str, Split | None]:
    """Named splits as given, plus fractions of the pool (or of train) for missing ones."""
    s = spec.data.splits
    for name in ("validation", "test"):
        if name in parts and getattr(s, name) > 0:
            raise SpecError(f"data.splits.{name}", f"the source already has a {name} split; "
                            "a fraction would carve a second one", value=getattr(s, name))
    pool_name = "all" if "all" in parts else "train"
    pool = parts[pool_name]
    val = s.validation if "validation" not in parts else 0.0
    test = s.test if "test" not in parts else 0.0
    check_lengths(pool, pool_name)
    index = _partition(len(pool), spec.data, spec.seed, pool.y, val, test)
    out: dict[str, Split | None] = {"train": pool.take(index["train"])}
    for name in ("validation", "test"):
        if name in parts:
            out[name] = parts[name]
        else:
            out[name] = pool.take(index[name]) if len(index[name]) else None
    return out


def load_data(spec: Spec, data: Any = None) -> Data:
    """The train / validation / test splits for a spec, checked before any training.

    Args:
        spec: the validated spec.
        data: from the Python API: arrays ``(x, y)``, ``{"x": ..., "y": ...}``, a pandas
            DataFrame (the spec names the label: ``source: {type: dataframe, label: COL}``),
            ``(df, y)``, or a dict with ``train`` / ``validation`` / ``test`` entries of any
            of these. Overrides a file source in the spec.

    Raises:
        SpecError: the source cannot be read as the spec says (missing file or column).
        DataError: empty splits, NaN/inf, labels outside the classes, shapes that do not
            match the model's inputs.

    Example:
        >>> from kspec import load_spec
        >>> data = load_data(load_spec("specs/quickstart.yaml"))
        >>> data.input_shapes()
        {'image': (8, 8, 1)}
    """
    input_names = [i.name for i in spec.model.inputs]
    meta: dict[str, Any] = {}
    if data is None:
        if spec.data.source is None:
            raise SpecError("data.source", "no data: give a source in the spec or pass "
                            "data=(x, y) to kspec.fit")
        parts, label, meta = _read_source(spec.data.source, input_names, "data.source",
                                          spec.data.groups, spec.data.categorical)
        if any(getattr(p, "streamed", False) for p in parts.values()):
            from kspec.data.stream_load import load_streamed

            return load_streamed(spec, parts, label, meta)
    elif isinstance(data, Mapping) and "train" in data:
        unknown = set(data) - {"train", "validation", "test"}
        if unknown:
            raise DataError(f"data: unknown split names {sorted(unknown)}; use train, "
                            "validation, test")
        parts = {}
        for k, v in data.items():
            if v is not None:
                parts[k], m = _as_split(v, spec, f"data[{k!r}]")
                meta.update(m)
        label = "<arrays>"
    else:
        whole, meta = _as_split(data, spec, "<arrays>")
        parts = {"all": whole}
        label = "<DataFrame>" if _is_frame(data) or (
            isinstance(data, tuple) and _is_frame(data[0])) else "<arrays>"
    groups = spec.data.groups
    if groups is not None:
        parts = _read_groups(spec, parts, label, meta)
    # Check the source as given, so that row numbers point into the file or array the
    # user has, not into a shuffled split.
    check_splits(parts, label, meta)
    check_inputs(spec, parts, label)
    check_labels(spec, parts, label, meta)
    splits = _assemble(parts, spec)
    result = Data(splits["train"], splits["validation"], splits["test"], label, meta)
    for name, split in result.splits().items():
        if len(split) == 0:
            raise DataError(f"{label}: the {name} split is empty after splitting "
                            f"{len(parts.get('all', parts.get('train')))} rows")
    if groups is not None:
        # Packed only now: stratification and the label checks above saw plain labels.
        from kspec.data.groups import pack_split

        for name, split in result.splits().items():
            setattr(result, name, pack_split(split, f"{label} ({name} split)"))
    return result


def _read_groups(spec: Spec, parts: dict[str, Split], label: str,
                 meta: dict) -> dict[str, Split]:
    """Every part with its group ids (``Split.groups``), checked against the metrics."""
    from kspec.data.groups import check_group_ids, feature_groups, group_names

    groups = spec.data.groups
    out = {}
    for name, split in parts.items():
        if groups.feature is not None:
            where = label if name == "all" else f"{label} ({name} split)"
            split = dataclasses.replace(split, groups=feature_groups(split, groups, where,
                                                                     meta))
        if split.groups is None:
            raise DataError(f"{label}: data.groups names the {groups.where()}, but the "
                            f"{name} data came without it")
        out[name] = split
    check_group_ids(spec, out, label, meta)
    names = group_names(groups)
    if names:
        meta["group_names"] = names
    return out
