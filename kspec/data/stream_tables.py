"""CSV files read in chunks: ``source: {type: csv, stream: true, chunk_rows: 10000}``.

Before training one pass reads every chunk (pandas, ``chunk_rows`` rows at a time): it
counts the rows, converts every cell as the in-memory reader does (a cell that is not a
number is refused with its row and line), checks NaN/inf, labels and group ids, and learns
the classes of a text label from the training file. Training then reads the file again for
every epoch, chunk by chunk, and mixes rows through a bounded shuffle buffer.

Example:
    >>> parts, label, meta = read_csv_stream(src, ["features"], "data.source")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kspec.data.checks import row_phrase
from kspec.data.split import Split
from kspec.data.stream import (
    RowNames,
    StreamSplit,
    text_key,
)
from kspec.data.tables import input_groups, label_columns
from kspec.errors import DataError, SpecError, first_line, suggest

ROW_OFFSET = 2  # line 1 is the header: row 0 is line 2


class Labels:
    """What the training file taught about each label column: text (its sorted classes)
    or numbers (integers or not); shared by the streams of one source."""

    def __init__(self, columns: dict[str | None, str]) -> None:
        self.columns = columns
        self.classes: dict[str, list[str] | None] = {c: None for c in columns.values()}
        self.integral = {c: True for c in columns.values()}
        self.learned = False


def _header(file: str, sep: str, encoding: str) -> list[str]:
    import pandas as pd

    try:
        return list(pd.read_csv(file, sep=sep, encoding=encoding, nrows=0,
                                index_col=False).columns)
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{file}: the file is empty (expected a header line naming the "
                        "columns)") from e
    except (UnicodeDecodeError, pd.errors.ParserError, OSError) as e:
        raise DataError(f"{file}: cannot read the header ({first_line(e)})") from e


class CsvStream(StreamSplit):
    """The rows of one CSV file (or those whose row number falls in ``selection``)."""

    def __init__(self, src: Any, file: str, columns: dict[str, list[str]], labels: Labels,
                 groups: Any, source: str, split: str = "all") -> None:
        super().__init__(source, 0, {n: ((len(c),), "float32") for n, c in columns.items()},
                         labelled=bool(labels.columns))
        self.src, self.file, self.columns, self.labels_ = src, file, columns, labels
        self.groups, self.split = groups, split
        self.file_key = text_key(Path(file).name)
        self.rows: int | None = None
        self.selection: tuple | None = None

    # -- converting one chunk --------------------------------------------------------------
    def _read(self, usecols: list[str] | None = None):
        import pandas as pd

        text = {c: str for c in self.labels_.columns.values()}
        return pd.read_csv(self.file, sep=self.src.delimiter, encoding=self.src.encoding,
                           chunksize=self.src.chunk_rows, dtype=text, usecols=usecols,
                           index_col=False)

    def _numbers(self, frame: Any, col: str) -> np.ndarray:
        import pandas as pd

        series = frame[col]
        values = pd.to_numeric(series, errors="coerce")
        bad = values.isna() & series.notna()
        if bad.any():
            row = int(series.index[np.argmax(bad.to_numpy())])
            raise DataError(f"{self.file}: column {col!r} is not numeric; "
                            f"{row_phrase(row, ROW_OFFSET)} has {series[row]!r}")
        return values.to_numpy(dtype="float64")

    def _label(self, frame: Any, col: str) -> np.ndarray:
        classes = self.labels_.classes[col]
        if classes is None:
            values = self._numbers(frame, col)
            empty = np.isnan(values)
            if empty.any():
                row = int(frame.index[np.argmax(empty)])
                raise DataError(f"{self.file}: the label {col!r} of "
                                f"{row_phrase(row, ROW_OFFSET)} is empty ({int(empty.sum())} "
                                "rows like it in this chunk)")
            return values.astype("int64") if self.labels_.integral[col] else values.astype(
                "float32")
        series = frame[col]
        codes = series.map({c: i for i, c in enumerate(classes)})
        unseen = codes.isna().to_numpy()
        if unseen.any():
            i = int(np.argmax(unseen))
            where = row_phrase(int(series.index[i]), ROW_OFFSET)
            if series.isna().iloc[i]:
                raise DataError(f"{self.file}: the label {col!r} of {where} is empty")
            raise DataError(f"{self.file}: the label {col!r} of {where} is "
                            f"{series.iloc[i]!r}, a class the training data does not have "
                            f"(classes: {classes})")
        return codes.to_numpy(dtype="int64")

    def _convert(self, frame: Any, labels_only: bool = False) -> dict:
        x = {} if labels_only else {
            name: np.stack([self._numbers(frame, c) for c in cols], 1).astype("float32")
            if cols else np.zeros((len(frame), 0), "float32")
            for name, cols in self.columns.items()}
        out: dict[str, Any] = {"x": x}
        if self.labels_.columns:
            ys = {o: self._label(frame, c) for o, c in self.labels_.columns.items()}
            out["y"] = ys[None] if None in ys else ys
        if self.groups is not None:
            out["groups"] = self._group_ids(frame)
        return out

    def _group_ids(self, frame: Any) -> np.ndarray:
        from kspec.data.groups import group_ids

        start = int(frame.index[0]) if len(frame) else 0
        meta = {"row_names": RowNames(len(frame), lambda i: row_phrase(start + i, ROW_OFFSET))}
        if self.groups.column is not None:
            values = frame[self.groups.column].to_numpy()
            what = f"column {self.groups.column!r}"
        else:
            (name, cols), = self.columns.items()
            feature = self.groups.feature
            index = cols.index(feature) if isinstance(feature, str) else feature
            values = self._numbers(frame, cols[index])
            what = f"feature {feature!r}"
        return group_ids(values, self.groups, self.file, what, meta)

    def _usecols(self, labels_only: bool) -> list[str]:
        cols = list(self.labels_.columns.values())
        if self.groups is not None and self.groups.column is not None:
            cols.append(self.groups.column)
        if not labels_only or (self.groups is not None and self.groups.feature is not None):
            cols += [c for cs in self.columns.values() for c in cs]
        return list(dict.fromkeys(cols))

    # -- before training -------------------------------------------------------------------
    def learn_labels(self) -> None:
        """One pass over the label columns of the training file: text or numbers, and the
        classes of a text label (sorted, as the in-memory reader orders them)."""
        import pandas as pd

        columns = list(self.labels_.columns.values())
        numeric = {c: True for c in columns}
        for frame in self._read(columns):
            for col in columns:
                values = pd.to_numeric(frame[col].dropna(), errors="coerce")
                if values.isna().any():
                    numeric[col] = False
                elif (values != values.round()).any():
                    self.labels_.integral[col] = False
        for col in columns:
            if not numeric[col]:
                # Text anywhere makes the whole column text, as pandas would read it.
                seen = {str(v) for frame in self._read([col]) for v in frame[col].dropna()}
                self.labels_.classes[col] = sorted(seen)
        self.labels_.learned = True

    def prepare(self, check):
        if self.labels_.columns and not self.labels_.learned:
            self.learn_labels()
        rows = 0
        for frame in self._read(self._usecols(False)):
            start = int(frame.index[0]) if len(frame) else rows
            element = self._convert(frame)
            y = element.get("y")
            names = RowNames(len(frame), lambda i, s=start: row_phrase(s + i, ROW_OFFSET))
            check(Split(element["x"], y, None, element.get("groups")), names)
            rows += len(frame)
        if rows == 0:
            raise DataError(f"{self.file}: the file has a header but no rows")
        self.rows = self.length = rows
        for output, col in self.labels_.columns.items():
            classes = self.labels_.classes[col]
            if classes:  # codes 0..K-1: the largest must fit the model too
                y = np.arange(len(classes))
                named = RowNames(len(y), lambda i, c=classes: f"class {c[i]!r}")
                check(Split({}, {output: y} if output else y), named)

    def carve(self, validation, test, *, shuffle, stratify, seed):
        return self._carve_rows(
            self.rows, validation, test, shuffle=shuffle, stratify=stratify, seed=seed,
            hashed="a streamed csv source is split by a hash of each row's number",
            instead="one file per split")

    # -- the pipeline ----------------------------------------------------------------------
    def _signature(self, keys: bool, labels_only: bool) -> dict:
        import tensorflow as tf

        out: dict[str, Any] = {"x": {} if labels_only else {
            n: tf.TensorSpec((None, len(c)), tf.float32) for n, c in self.columns.items()}}
        if self.labels_.columns:
            ys = {}
            for o, c in self.labels_.columns.items():
                integer = self.labels_.classes[c] is not None or self.labels_.integral[c]
                ys[o] = tf.TensorSpec((None,), tf.int64 if integer else tf.float32)
            out["y"] = ys[None] if None in ys else ys
        if self.groups is not None:
            out["groups"] = tf.TensorSpec((None,), tf.int64)
        if keys:
            out["key"] = tf.TensorSpec((None,), tf.string)
        return out

    def _elements(self, batch_size, *, shuffle, seed, keys=False, labels_only=False,
                  drop_remainder=False):
        import tensorflow as tf

        usecols = self._usecols(labels_only)

        def chunks():
            for frame in self._read(usecols):
                keep = self._mask(frame.index.to_numpy())
                if not keep.all():
                    frame = frame[keep]
                if not len(frame):
                    continue
                element = self._convert(frame, labels_only)
                if keys:
                    element["key"] = np.array([row_phrase(int(r), ROW_OFFSET)
                                               for r in frame.index], dtype=object)
                yield element

        ds = tf.data.Dataset.from_generator(
            chunks, output_signature=self._signature(keys, labels_only))
        if shuffle:
            return ds.unbatch().shuffle(self.src.shuffle_buffer, seed=seed,
                                        reshuffle_each_iteration=True).batch(
                batch_size, drop_remainder=drop_remainder)
        return ds.rebatch(batch_size, drop_remainder=drop_remainder)


def read_csv_stream(src: Any, input_names: list[str], where: str, groups: Any = None,
                    categorical: Any = None):
    """``{split: CsvStream}``: the columns of each file checked against the spec; rows are
    counted and checked by ``prepare``, before training."""
    from kspec.data.files import check_encoding
    from kspec.data.tables import _paths

    check_encoding(src.encoding, f"{where}.encoding")
    paths = _paths(src.path)
    labels = Labels(label_columns(src.label))
    out: dict[str, CsvStream] = {}
    names: dict[str, Any] = {}
    for split, file in paths.items():
        if not Path(file).is_file():
            key = f"{where}.path" + ("" if split == "all" else f".{split}")
            raise SpecError(key, f"file not found: {file}")
        header = _header(file, src.delimiter, src.encoding)
        for output, col in labels.columns.items():
            if col not in header:
                path = f"{where}.label" + (f".{output}" if output else "")
                raise SpecError(path, f"{file} has no column {col!r}", valid=header,
                                hint=suggest(col, header))
        attribute = groups.column if groups is not None else None
        if attribute is not None and attribute not in header:
            raise SpecError("data.groups.column", f"{file} has no column {attribute!r}",
                            valid=header, hint=suggest(attribute, header))
        columns = input_groups(src, header, input_names, where, file, attribute)
        if groups is not None and groups.feature is not None:
            cols = next(iter(columns.values()))
            if len(columns) != 1 or (isinstance(groups.feature, str) and
                                     groups.feature not in cols) or (
                    isinstance(groups.feature, int) and not 0 <= groups.feature < len(cols)):
                raise SpecError("data.groups.feature", f"{file}: no feature {groups.feature!r} "
                                "in the one input's columns", value=groups.feature, valid=cols)
        label = file if split == "all" else f"{file} ({split} split)"
        out[split] = CsvStream(src, file, columns, labels, groups, label, split)
        names.setdefault("feature_names", columns)
    # The training file (or the one pool) first: it names the classes of a text label.
    first = "all" if "all" in out else "train"
    if labels.columns:
        out[first].learn_labels()
    meta: dict[str, Any] = {"row_offset": ROW_OFFSET}
    fn = names.get("feature_names", {})
    meta["feature_names"] = next(iter(fn.values())) if len(fn) == 1 else fn
    texts = {c: v for c, v in labels.classes.items() if v is not None}
    if texts:
        meta["class_names"] = next(iter(texts.values())) if len(texts) == 1 else texts
    return out, ", ".join(paths.values()), meta
