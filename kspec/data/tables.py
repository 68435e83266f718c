"""Tabular sources: CSV files, pandas DataFrames and NPZ archives.

Each reader returns ``{split_name: Split}``: one entry ``"all"`` for a single source that is
split by fractions later, or ``train`` / ``validation`` / ``test`` for named splits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kspec.data.checks import row_phrase
from kspec.data.files import check_encoding, npz_array, open_npz, read_table
from kspec.data.groups import column_groups, group_ids
from kspec.data.split import Split
from kspec.errors import DataError, SpecError, suggest

BUNDLED_PREFIX = "bundled:"


def _resolve(path: str) -> str:
    """A file on disk, or ``bundled:NAME.csv`` for a table shipped with kspec."""
    if path.startswith(BUNDLED_PREFIX):
        from importlib import resources

        return str(resources.files("kspec.datasets").joinpath(path[len(BUNDLED_PREFIX):]))
    return os.path.expanduser(path)


def _paths(path: str | Mapping[str, str]) -> dict[str, str]:
    paths = {"all": path} if isinstance(path, str) else dict(path)
    return {k: _resolve(v) for k, v in paths.items()}


def _path_key(where: str, split: str, named: bool) -> str:
    return f"{where}.path.{split}" if named else f"{where}.path"


def label_columns(label: Any) -> dict[str | None, str]:
    """``{output_name_or_None: column}`` for a label given as a column or one per output."""
    if label is None:
        return {}
    return {None: label} if isinstance(label, str) else dict(label)


def input_groups(src: Any, columns: list[str], input_names: list[str], where: str,
                 file: str, attribute: str | None = None,
                 categorical: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The numeric columns of every model input, checked against the frame's columns.

    ``attribute`` (the ``data.groups`` column) is left out of the default features: a
    sample attribute feeds the model only when ``features`` or ``inputs`` list it. The
    ``categorical`` columns are never numeric features; they feed inputs of their own.
    """
    labels = set(label_columns(src.label).values()) | {attribute} | set(categorical)
    if src.inputs:
        for name in src.inputs:
            if name not in input_names:
                raise SpecError(f"{where}.inputs.{name}", f"the model has no input {name!r}",
                                valid=input_names)
        missing = [n for n in input_names if n not in src.inputs]
        if missing:
            raise SpecError(f"{where}.inputs", f"no columns for model inputs {missing}",
                            valid=input_names)
        groups = {name: list(cols) for name, cols in src.inputs.items()}
        for name, cols in groups.items():
            for i, col in enumerate(cols):
                if col not in columns:
                    raise SpecError(f"{where}.inputs.{name}[{i}]",
                                    f"{file} has no column {col!r}", valid=columns,
                                    hint=suggest(col, columns))
        return groups
    if len(input_names) != 1:
        raise SpecError(f"{where}.inputs", f"the model has inputs {input_names}; map columns "
                        "to each: inputs: {NAME: [COLUMN, ...]}", valid=input_names)
    features = src.features or [c for c in columns if c not in labels]
    for i, col in enumerate(features):
        if col not in columns:
            raise SpecError(f"{where}.features[{i}]", f"{file} has no column {col!r}",
                            valid=columns)
    return {input_names[0]: list(features)}


def _numeric(frame, col: str, file: str, row_offset: int) -> np.ndarray:
    import pandas as pd

    series = frame[col]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype="float32")
    coerced = pd.to_numeric(series, errors="coerce")
    bad = series[coerced.isna() & series.notna()]
    bad = bad if len(bad) else series[coerced.isna()]
    pos = series.index.get_loc(bad.index[0])
    raise DataError(f"{file}: column {col!r} is not numeric; {row_phrase(pos, row_offset)} "
                    f"has {bad.iloc[0]!r} (name text columns in data.categorical)")


def _label_codes(frames: dict[str, Any], col: str) -> list[str]:
    """The classes of a text label: the sorted labels of the training file (or the pool).

    Only the training data names the classes, as a model trained on it would; a label
    that only a validation or test file has is refused by :func:`_encode_labels`.
    """
    train = frames.get("all", frames.get("train"))
    return sorted(train[col].dropna().astype(str).unique())


def _encode_labels(frame: Any, col: str, classes: list[str], file: str,
                   row_offset: int) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(classes)}
    empty = frame[col].isna().to_numpy()
    codes = frame[col].astype(str).map(lookup)
    unseen = codes.isna().to_numpy()
    if unseen.any():
        row = int(np.argmax(empty if empty.any() else unseen))
        where = row_phrase(row, row_offset)
        if empty.any():
            raise DataError(f"{file}: the label {col!r} of {where} is empty "
                            f"({int(empty.sum())} rows like it)")
        raise DataError(f"{file}: the label {col!r} of {where} is "
                        f"{frame[col].iloc[row]!r}, a class the training data does not have "
                        f"({int(unseen.sum())} rows like it; classes: {classes})")
    return codes.to_numpy(dtype="int64")


def frames_to_splits(frames: dict[str, Any], src: Any, input_names: list[str], where: str,
                     files: dict[str, str], row_offset: int, groups: Any = None,
                     categorical: dict[str, Any] | None = None) -> tuple[dict[str, Split], dict]:
    """Column groups -> feature arrays; labels -> integer codes when they are strings.

    String labels get codes in the sorted order of the training labels, so that separate
    train and test files agree on them. ``groups`` (``data.groups``) with a ``column``
    reads each row's group id from it. ``categorical`` (``data.categorical``) columns
    become string inputs of their own (:mod:`kspec.data.categorical`).
    """
    import pandas as pd

    from kspec.data.categorical import check_columns, read_column

    categorical = categorical or {}
    labels = label_columns(src.label)
    meta: dict[str, Any] = {}
    codes: dict[str, list] = {}
    for output, col in labels.items():
        for split, frame in frames.items():
            if col not in frame.columns:
                path = f"{where}.label" + (f".{output}" if output else "")
                raise SpecError(path, f"{files[split]} has no column {col!r}",
                                valid=list(frame.columns), hint=suggest(col, frame.columns))
        if not all(pd.api.types.is_numeric_dtype(f[col]) for f in frames.values()):
            codes[col] = _label_codes(frames, col)
    if codes:
        meta["class_names"] = next(iter(codes.values())) if len(codes) == 1 else codes
    out = {}
    attribute = groups.column if groups is not None else None
    for split, frame in frames.items():
        # The group column first: a misspelt one would otherwise surface as a text column
        # among the default features.
        ids = (column_groups(frame, groups, files[split], {"row_offset": row_offset})
               if attribute is not None else None)
        columns = input_groups(src, list(frame.columns), input_names, where, files[split],
                               attribute, tuple(categorical))
        check_columns(categorical, list(frame.columns), files[split], columns)
        x = {name: np.stack([_numeric(frame, c, files[split], row_offset) for c in cols], 1)
             if cols else np.zeros((len(frame), 0), "float32") for name, cols in columns.items()}
        for col, setting in categorical.items():
            x[setting.input or col] = read_column(frame, col, setting, files[split], row_offset)
        ys = {}
        for output, col in labels.items():
            if col in codes:
                ys[output] = _encode_labels(frame, col, codes[col], files[split], row_offset)
            else:
                ys[output] = frame[col].to_numpy()
        y = ys.get(None) if None in ys else (ys or None)
        out[split] = Split(x, y, groups=ids)
        meta.setdefault("feature_names", dict(columns))
    if len(meta.get("feature_names", {})) == 1:
        meta["feature_names"] = next(iter(meta["feature_names"].values()))
    return out, meta


def read_csv(src: Any, input_names: list[str], where: str, groups: Any = None,
             categorical: dict[str, Any] | None = None):
    """``{split: Split}``, a label for messages and meta (feature and class names); with
    ``stream: true``, streamed splits read in chunks (:mod:`kspec.data.stream_tables`)."""
    if src.stream:
        from kspec.data.stream_tables import read_csv_stream

        return read_csv_stream(src, input_names, where, groups, categorical)
    paths = _paths(src.path)
    frames = {}
    # Categorical columns are read as text, so that codes such as '02139' keep their form.
    as_text = {col: str for col in categorical or {}}
    encoding = check_encoding(getattr(src, "encoding", "utf-8"), f"{where}.encoding")
    for split, p in paths.items():
        if not Path(p).is_file():
            raise SpecError(_path_key(where, split, split != "all"), f"file not found: {p}")
        frames[split] = read_table(p, sep=src.delimiter, dtype=as_text, encoding=encoding)
        if len(frames[split]) == 0:
            raise DataError(f"{p}: the file has a header but no rows")
    # Row numbers in messages count the header as line 1, as editors do.
    splits, meta = frames_to_splits(frames, src, input_names, where, paths, row_offset=2,
                                    groups=groups, categorical=categorical)
    meta["row_offset"] = 2
    return splits, ", ".join(paths.values()), meta


def read_dataframe(src: Any, input_names: list[str], where: str, groups: Any = None,
                   categorical: Any = None):
    """A ``dataframe`` source names the columns of a DataFrame passed from Python."""
    raise SpecError(f"{where}.type", "a dataframe source needs the DataFrame itself: "
                    "kspec.fit(spec, data=df)", valid="csv, npz, image_folder, tfds, bundled")


def read_frame(frame: Any, y: Any, src: Any, input_names: list[str], where: str,
               groups: Any = None, categorical: dict[str, Any] | None = None):
    """A DataFrame (labels in a column named by the source, or given as ``y``)."""
    from kspec.spec.sources import DataFrameSource

    if src is None or not hasattr(src, "label"):
        if y is None:
            raise SpecError("data.source", "a DataFrame needs its label column named in the "
                            "spec: source: {type: dataframe, label: COLUMN}, or pass (df, y)")
        src = DataFrameSource(type="dataframe", label=None)
    elif y is not None:
        src = src.model_copy(update={"label": None})
    splits, meta = frames_to_splits({"all": frame}, src, input_names, where,
                                    {"all": "<DataFrame>"}, row_offset=0, groups=groups,
                                    categorical=categorical)
    if y is not None:
        splits["all"].y = ({k: np.asarray(v) for k, v in y.items()}
                           if isinstance(y, Mapping) else np.asarray(y))
    return splits["all"], meta


def read_npz(src: Any, input_names: list[str], where: str, groups: Any = None,
             categorical: Any = None):
    """``{split: Split}``; ``groups.array`` names the array of group ids."""
    paths = _paths(src.path)
    out = {}
    for split, p in paths.items():
        file = Path(p)
        if not file.is_file():
            raise SpecError(_path_key(where, split, split != "all"), f"file not found: {p}")
        with open_npz(file) as z:
            if src.inputs:
                for name in src.inputs:
                    if name not in input_names:
                        raise SpecError(f"{where}.inputs.{name}",
                                        f"the model has no input {name!r}", valid=input_names)
                keys = dict(src.inputs)
            elif len(input_names) != 1:
                raise SpecError(f"{where}.inputs", f"the model has inputs {input_names}; map "
                                "array keys to each: inputs: {NAME: KEY}", valid=input_names)
            else:
                keys = {input_names[0]: src.x}
            labels = label_columns(src.y)
            for key in [*keys.values(), *labels.values()]:
                if key not in z.files:
                    raise SpecError(where, f"{p} has no array {key!r}", valid=z.files)
            x = {name: npz_array(z, key, p) for name, key in keys.items()}
            ys = {k: npz_array(z, v, p) for k, v in labels.items()}
            ids = None
            if groups is not None and groups.array is not None:
                if groups.array not in z.files:
                    raise SpecError("data.groups.array", f"{p} has no array {groups.array!r}",
                                    valid=z.files, hint=suggest(groups.array, z.files))
                ids = group_ids(npz_array(z, groups.array, p), groups, p,
                                f"array {groups.array!r}", {})
        out[split] = Split(x, ys.get(None) if None in ys else (ys or None), groups=ids)
    return out, ", ".join(paths.values()), {}
