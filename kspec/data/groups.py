"""Each row's group (a sensitive attribute) for the fairness metrics, read as ``data.groups``
says, and packed into the targets after splitting.

The group ids travel with their rows through splitting (``Split.groups``) and are packed
as the last target column (``kspec.components.pack_groups``) only once the splits are
final, so that stratification and the label checks see the plain labels.

Example:
    >>> from kspec.spec.data import Groups
    >>> group_ids(np.array([12.0, 15.0, 31.0]), Groups(feature=0, bins=[15.0]), "<arrays>",
    ...           "feature 0", {}).tolist()
    [0, 1, 1]
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kspec.data.checks import _row
from kspec.data.split import Split
from kspec.errors import DataError, SpecError, suggest


def _show(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``1.5``, not ``np.float64(1.5)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool)


def _as_number(key: Any) -> float | None:
    if isinstance(key, bool):
        return None
    try:
        return float(key)
    except (TypeError, ValueError):
        return None


def group_ids(values: Any, groups: Any, source: str, what: str, meta: dict) -> np.ndarray:
    """Integer group ids (``int64``) from the raw values of a column, array or feature.

    Args:
        values: one value per row (numbers or category strings).
        groups: the ``data.groups`` entry (bins, map).
        source: the file or source, named in errors.
        what: ``column 'sex'``, ``feature 'mean radius'``..., named in errors.
        meta: the source's meta (``row_offset`` turns rows into file lines).

    Raises:
        DataError: a missing value, a value the map lacks, a non-number to bin, or (with
            neither bins nor map) a value that is not a non-negative integer.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"{source}: the groups ({what}) need one value per row; got shape "
                        f"{list(values.shape)}")
    numeric = values.dtype.kind in "biuf"
    if values.dtype.kind == "f":
        missing = np.isnan(values)
    elif values.dtype == object:  # pandas text columns hold NaN (or None) for empty cells
        missing = np.array([v is None or (isinstance(v, float) and np.isnan(v))
                            for v in values], dtype=bool)
    else:
        missing = np.zeros(len(values), dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{source}: the group ({what}) of {_row(meta, i)} is missing "
                        f"({int(missing.sum())} rows without a group)")
    if groups.map is not None:
        return _mapped(values, groups.map, numeric, source, what, meta)
    if groups.bins is not None:
        if not numeric:
            i = next(i for i, v in enumerate(values) if not _is_number(v))
            raise DataError(f"{source}: bins need numbers, but the group ({what}) of "
                            f"{_row(meta, i)} is {_show(values[i])!r}; use map for categories")
        # right=False: an edge belongs to the bin above it, as "[low, high)" in the docs.
        return np.digitize(values.astype("float64"), groups.bins).astype("int64")
    bad = (np.flatnonzero((values < 0) | (values != np.round(values))) if numeric
           else np.arange(len(values)))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{source}: group ids must be integers 0, 1, ...; the group ({what}) "
                        f"of {_row(meta, i)} is {_show(values[i])!r} ({len(bad)} rows "
                        "like it); cut numbers with bins: [...] or name categories with "
                        "map: {VALUE: ID}")
    return values.astype("int64")


def _mapped(values: np.ndarray, table: dict, numeric: bool, source: str, what: str,
            meta: dict) -> np.ndarray:
    # Numbers match numerically (a CSV column of 1.0 matches the key 1, and the key "1"
    # that a resolved spec written as JSON has); anything else by its text, so YAML keys
    # match CSV cells whatever type each parser chose.
    ids = np.full(len(values), -1, dtype="int64")
    text = None if numeric else values.astype(str)
    for key, gid in table.items():
        if numeric:
            number = _as_number(key)
            if number is not None:
                ids[values == number] = gid
        else:
            ids[text == str(key)] = gid
    bad = np.flatnonzero(ids < 0)
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{source}: the group ({what}) of {_row(meta, i)} is "
                        f"{_show(values[i])!r}, which groups.map does not name "
                        f"({len(bad)} rows unmapped; map keys: {list(table)})")
    return ids


def group_names(groups: Any) -> list[str] | None:
    """Readable names of the group ids for bins and maps (``Data.meta['group_names']``)."""
    named = next(getattr(groups, k) for k in ("column", "array", "feature")
                 if getattr(groups, k) is not None)
    label = f"feature {named}" if isinstance(named, int) else named
    if groups.bins is not None:
        edges = [f"{b:g}" for b in groups.bins]
        names = [f"{label} < {edges[0]}"]
        names += [f"{lo} <= {label} < {hi}" for lo, hi in zip(edges, edges[1:])]
        return names + [f"{label} >= {edges[-1]}"]
    if groups.map is not None:
        by_id: dict[int, list[str]] = {}
        for key, gid in groups.map.items():
            by_id.setdefault(gid, []).append(str(key))
        return [", ".join(by_id.get(g, [])) for g in range(max(by_id) + 1)]
    return None


def column_groups(frame: Any, groups: Any, file: str, meta: dict) -> np.ndarray:
    """The group ids of a CSV / DataFrame from ``groups.column``."""
    if groups.column not in frame.columns:
        raise SpecError("data.groups.column", f"{file} has no column {groups.column!r}",
                        valid=list(frame.columns), hint=suggest(groups.column, frame.columns))
    return group_ids(frame[groups.column].to_numpy(), groups, file,
                     f"column {groups.column!r}", meta)


def feature_groups(split: Split, groups: Any, source: str, meta: dict) -> np.ndarray:
    """The group ids from ``groups.feature``: a column of the one input's 2-D features."""
    if len(split.x) != 1:
        raise SpecError("data.groups.feature", f"a feature names a column of the one input's "
                        f"table; the data has inputs {sorted(split.x)}", value=groups.feature,
                        valid="column: NAME (csv) or array: KEY (npz)")
    table = next(iter(split.x.values()))
    if table.ndim != 2:
        raise SpecError("data.groups.feature", f"{source}: the features have shape "
                        f"{list(table.shape[1:])} per row, not a table of columns",
                        value=groups.feature, valid="a source with one row of numbers per example")
    names = meta.get("feature_names")
    names = [str(n) for n in names] if isinstance(names, list) else None
    feature = groups.feature
    if isinstance(feature, str):
        if names is None or feature not in names:
            raise SpecError("data.groups.feature", f"{source} has no feature named "
                            f"{feature!r}" + ("" if names else " (its features have no names; "
                                              "give an index)"),
                            valid=names or f"an index 0..{table.shape[1] - 1}",
                            hint=suggest(feature, names or []))
        index = names.index(feature)
    else:
        index = feature
        if not 0 <= index < table.shape[1]:
            raise SpecError("data.groups.feature", f"{source} has {table.shape[1]} features; "
                            f"there is no feature {index}", value=feature,
                            valid=f"0..{table.shape[1] - 1}")
    what = f"feature {feature!r}" if isinstance(feature, str) or names is None else (
        f"feature {index} ({names[index]!r})")
    return group_ids(table[:, index], groups, source, what, meta)


def declared_num_groups(spec: Any) -> tuple[int, str] | None:
    """The smallest ``num_groups`` of the group-aware metrics, with its spec path."""
    from kspec import registry

    registry.load_builtins()
    metrics = spec.training.metrics
    refs = ([(m, f"training.metrics.{o}[{i}]") for o, ms in metrics.items()
             for i, m in enumerate(ms)] if isinstance(metrics, dict) else
            [(m, f"training.metrics[{i}]") for i, m in enumerate(metrics)])
    found = []
    for ref, path in refs:
        entry, params = registry.METRICS.split_ref(ref, path)
        if "packed_groups" in entry.tags:
            n = params.get("num_groups", 2)
            found.append((n, f"{path}.num_groups" if "num_groups" in params else path))
    return min(found) if found else None


def check_group_ids(spec: Any, parts: dict[str, Split], source: str, meta: dict) -> None:
    """Every id must have a slot in the metrics' per-group counts (ids past it are lost)."""
    declared = declared_num_groups(spec)
    if declared is None:
        return
    n, path = declared
    for name, split in parts.items():
        ids = split.groups
        bad = np.flatnonzero(ids >= n) if ids is not None else []
        if len(bad):
            i = int(bad[0])
            where = source if name == "all" else f"{source} ({name} split)"
            raise DataError(f"{where}: {_row(meta, i)} is in group {int(ids[i])}, but "
                            f"{path} counts num_groups={n} (ids 0..{n - 1}); set num_groups: "
                            f"{int(ids.max()) + 1} on every group metric")


def pack_split(split: Split, source: str) -> Split:
    """``split`` with its group ids packed as the last target column."""
    from kspec.components.metrics import pack_groups

    y = split.y
    if y is None:
        raise DataError(f"{source}: groups are packed with the labels, but the data has none")
    if isinstance(y, dict):
        if len(y) != 1:
            raise SpecError("data.groups", "groups need a model with one output; the labels "
                            f"are given for {sorted(y)}", valid="one label column")
        (key, value), = y.items()
        packed: Any = {key: pack_groups(value, split.groups, source)}
    else:
        packed = pack_groups(y, split.groups, source)
    return dataclasses.replace(split, y=packed)
