"""Categorical (text) columns of CSV files and DataFrames as string model inputs.

Reading keeps every categorical column as text, one string per row (numbers such as zip
codes included: ``02139`` stays ``"02139"``), in an input of its own. The vocabulary of
each column is fitted on the **training split only** (most frequent first, ties in sorted
order, with ``min_count`` and ``max_tokens``); anything else, such as a category that only
the test split has, goes to the one out-of-vocabulary bucket. The encoding is a
``keras.layers.StringLookup`` (one-hot, or integer ids into an ``Embedding``) inside the
model, concatenated onto a numeric input, so saved and exported models take raw strings.

Example:
    >>> import numpy as np
    >>> from kspec.spec.data import Categorical
    >>> fit_vocabulary(np.array([["b"], ["a"], ["b"], ["c"]], object), Categorical(min_count=1))
    ['b', 'a', 'c']
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from kspec.data.checks import row_phrase
from kspec.errors import DataError, SpecError, suggest


def check_columns(categorical: dict[str, Any], columns: list[str], file: str,
                  taken: dict[str, list[str]]) -> None:
    """Every categorical column exists and is not also a numeric feature.

    Args:
        categorical: ``data.categorical`` (column -> :class:`~kspec.spec.data.Categorical`).
        columns: the columns of the file or DataFrame.
        file: the file name, for messages.
        taken: the numeric columns of every model input.
    """
    numeric = {c: name for name, cols in taken.items() for c in cols}
    for col in categorical:
        if col not in columns:
            raise SpecError(f"data.categorical.{col}", f"{file} has no column {col!r}",
                            valid=columns, hint=suggest(col, columns))
        if col in numeric:
            raise SpecError(f"data.categorical.{col}", f"column {col!r} is also a numeric "
                            f"feature of input {numeric[col]!r}; list it in one place",
                            valid="leave it out of features / inputs")


def read_column(frame: Any, col: str, setting: Any, file: str, row_offset: int) -> np.ndarray:
    """One categorical column as an ``(n, 1)`` object array of Python strings.

    Raises:
        DataError: an empty cell and no ``missing`` token to stand for it.
    """
    series = frame[col]
    empty = series.isna().to_numpy()
    if empty.any() and setting.missing is None:
        row = int(np.argmax(empty))
        raise DataError(f"{file}: categorical column {col!r} is empty in "
                        f"{row_phrase(row, row_offset)} "
                        f"({int(empty.sum())} empty cells); name a category for them with "
                        f"data.categorical.{col}.missing")
    text = series.astype(str).to_numpy(dtype=object)
    if empty.any():
        text[empty] = setting.missing
    return text.reshape(-1, 1)


def fit_vocabulary(values: np.ndarray, setting: Any) -> list[str]:
    """The categories of the training values: most frequent first, ties sorted.

    Categories seen fewer than ``min_count`` times, and those beyond ``max_tokens``, are
    left out: the lookup sends them to the out-of-vocabulary bucket.
    """
    counts = Counter(values.reshape(-1).tolist())
    kept = sorted((v for v, n in counts.items() if n >= setting.min_count),
                  key=lambda v: (-counts[v], v))
    return kept[:setting.max_tokens] if setting.max_tokens else kept


def embedding_dim(categories: int) -> int:
    """A common rule of thumb (fastai): ``1.6 * n ** 0.56``, at most 50."""
    return max(1, min(50, round(1.6 * categories ** 0.56)))


class JoinCategorical:
    """Concatenate encoded string inputs onto a numeric input's tensor.

    An entry of ``kspec.data.preprocess.input_layers``: called on the numeric tensor, it
    creates one ``keras.Input`` (shape ``[1]``, dtype string) per categorical column,
    encodes it and returns the concatenation. ``side_inputs`` holds those inputs after the
    call; ``build_model`` adds them to the model's inputs.

    Args:
        target: the numeric input's name (names the concatenation layer).
        columns: ``{input_name: (setting, vocabulary)}`` in order.
    """

    def __init__(self, target: str, columns: dict[str, tuple[Any, list[str]]],
                 paths: dict[str, str] | None = None):
        self.target = target
        self.columns = columns
        self.paths = paths or {}
        self.side_inputs: list[Any] = []

    def __call__(self, x):
        import keras

        if len(x.shape) != 2:
            raise SpecError("data.categorical", f"categorical columns join a table of numbers; "
                            f"input {self.target!r} has shape {list(x.shape[1:])} here",
                            valid="join: the name of a 2-D table input")
        # Fresh inputs and layers on every call: each build gets its own model.
        self.side_inputs = []
        parts = [keras.ops.cast(x, "float32")] if x.shape[1] else []
        for name, (setting, vocabulary) in self.columns.items():
            raw = keras.Input(shape=(1,), dtype="string", name=name)
            self.side_inputs.append(raw)
            parts.append(_encode(raw, name, setting, vocabulary,
                                 self.paths.get(name, "data.categorical")))
        if len(parts) == 1:
            return parts[0]
        return keras.layers.Concatenate(name=f"{self.target}_with_categorical")(parts)


def _lookup(name: str, vocabulary: list[str], mode: str, path: str):
    import keras

    from kspec.compiler.origins import remember

    layer = keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1,
                                      output_mode=mode, name=f"{name}_lookup")
    # StringLookup cannot be compiled by XLA: that error names the spec's column.
    return remember(layer, path)


def _encode(raw, name: str, setting: Any, vocabulary: list[str], path: str):
    import keras

    # One OOV index (0): unseen categories share it instead of failing at serving time.
    if setting.encoding == "one_hot":
        codes = _lookup(name, vocabulary, "one_hot", path)(raw)
        return keras.ops.cast(codes, "float32")  # the lookup's one-hot codes are int64
    ids = _lookup(name, vocabulary, "int", path)(raw)
    dim = setting.dim or embedding_dim(len(vocabulary) + 1)
    vectors = keras.layers.Embedding(len(vocabulary) + 1, dim, name=f"{name}_embedding")(ids)
    return keras.layers.Reshape((dim,), name=f"{name}_vector")(vectors)


def join_layers(spec: Any, data: Any) -> dict[str, JoinCategorical]:
    """``{numeric_input: JoinCategorical}`` with vocabularies fitted on ``data.train``.

    Raises:
        SpecError: ``join`` names no model input, or is needed (several inputs) and missing.
    """
    categorical = spec.data.categorical or {}
    if not categorical:
        return {}
    if data is None:
        raise SpecError("data.categorical", "categorical vocabularies need the training data")
    names = [i.name for i in spec.model.inputs]
    joins: dict[str, dict[str, tuple[Any, list[str]]]] = {}
    paths: dict[str, str] = {}
    for col, setting in categorical.items():
        where = f"data.categorical.{col}"
        target = setting.join or (names[0] if len(names) == 1 else None)
        if target is None:
            raise SpecError(f"{where}.join", f"the model has inputs {names}; say which one "
                            "the column's encoding joins", valid=names)
        if target not in names:
            raise SpecError(f"{where}.join", f"the model has no input {target!r}", valid=names,
                            hint=suggest(target, names))
        name = setting.input or col
        vocabulary = fit_vocabulary(data.train.x[name], setting)
        if not vocabulary:
            raise DataError(f"{data.source}: categorical column {col!r} keeps no category of "
                            f"the training split (min_count {setting.min_count})")
        joins.setdefault(target, {})[name] = (setting, vocabulary)
        paths[name] = where
    data.meta["vocabularies"] = {n: v for cols in joins.values() for n, (_, v) in cols.items()}
    return {target: JoinCategorical(target, cols, paths) for target, cols in joins.items()}
