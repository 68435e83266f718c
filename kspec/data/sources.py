"""Read data sources into arrays and split them into train / validation / test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kspec.errors import DataError, SpecError
from kspec.spec import Spec
from kspec.spec.data import BundledSource, CsvSource, DataSpec, NpzSource

Arrays = dict[str, np.ndarray]


@dataclass
class Split:
    """One split: features by input name, labels (one array, or one per output)."""

    x: Arrays
    y: np.ndarray | Arrays | None
    sample_weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))

    def take(self, index: np.ndarray) -> "Split":
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        y = {k: v[index] for k, v in self.y.items()} if isinstance(self.y, dict) else pick(self.y)
        return Split({k: v[index] for k, v in self.x.items()}, y, pick(self.sample_weight))


@dataclass
class Data:
    """The splits a run trains, validates and tests on."""

    train: Split
    validation: Split | None = None
    test: Split | None = None
    source: str = "<arrays>"
    meta: dict[str, Any] = field(default_factory=dict)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape[1:]) for k, v in self.train.x.items()}

    def splits(self) -> dict[str, Split]:
        out = {"train": self.train, "validation": self.validation, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}


def _read_source(src, path: str) -> tuple[np.ndarray, np.ndarray | None, str, dict]:
    if isinstance(src, BundledSource):
        from kspec.data.datasets import load_bundled

        arrays = load_bundled(src.name, f"{path}.name")
        meta = {k: v.tolist() for k, v in arrays.items() if k.endswith("_names")}
        return arrays["x"], arrays["y"], f"bundled:{src.name}", meta
    if isinstance(src, NpzSource):
        file = Path(src.path)
        if not file.is_file():
            raise SpecError(f"{path}.path", f"file not found: {src.path}")
        with np.load(file, allow_pickle=False) as z:
            for key in (src.x, src.y):
                if key is not None and key not in z.files:
                    raise SpecError(path, f"{src.path} has no array {key!r}", valid=z.files)
            return z[src.x], (z[src.y] if src.y else None), str(file), {}
    if isinstance(src, CsvSource):
        return _read_csv(src, path)
    raise SpecError(path, f"unsupported source {type(src).__name__}")


def _read_csv(src: CsvSource, path: str):
    import pandas as pd

    file = Path(src.path)
    if not file.is_file():
        raise SpecError(f"{path}.path", f"file not found: {src.path}")
    frame = pd.read_csv(file, sep=src.delimiter)
    columns = list(frame.columns)
    if src.label is not None and src.label not in columns:
        raise SpecError(f"{path}.label", f"{src.path} has no column {src.label!r}",
                        valid=columns)
    features = src.features or [c for c in columns if c != src.label]
    for i, col in enumerate(features):
        if col not in columns:
            raise SpecError(f"{path}.features[{i}]", f"{src.path} has no column {col!r}",
                            valid=columns)
    for col in features:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            bad = frame[col][pd.to_numeric(frame[col], errors="coerce").isna()].index[0]
            raise DataError(f"{src.path}: column {col!r} is not numeric; row {bad + 2} has "
                            f"{frame[col][bad]!r}")
    x = frame[features].to_numpy(dtype="float32")
    y = frame[src.label].to_numpy() if src.label is not None else None
    return x, y, str(file), {"feature_names": features}


def _as_split(value: Any, input_names: list[str], where: str) -> Split:
    if isinstance(value, Split):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3):
        x, y, *w = value
    elif isinstance(value, Mapping) and "x" in value:
        x, y, w = value["x"], value.get("y"), [value.get("sample_weight")]
    else:
        x, y, w = value, None, []
    if isinstance(x, Mapping):
        xs = {k: np.asarray(v) for k, v in x.items()}
    else:
        if len(input_names) != 1:
            raise DataError(f"{where}: the model has inputs {input_names}; pass features as a "
                            "dict keyed by input name")
        xs = {input_names[0]: np.asarray(x)}
    y = {k: np.asarray(v) for k, v in y.items()} if isinstance(y, Mapping) else (
        None if y is None else np.asarray(y))
    return Split(xs, y, np.asarray(w[0]) if w and w[0] is not None else None)


def _partition(n: int, spec: DataSpec, seed: int, y: Any) -> dict[str, np.ndarray]:
    s = spec.splits
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n) if s.shuffle else np.arange(n)
    n_val, n_test = int(round(n * s.validation)), int(round(n * s.test))
    if s.stratify and isinstance(y, np.ndarray) and y.ndim == 1:
        parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
        for cls in np.unique(y):
            members = idx[y[idx] == cls]
            k_val = int(round(len(members) * s.validation))
            k_test = int(round(len(members) * s.test))
            parts["test"] += list(members[:k_test])
            parts["validation"] += list(members[k_test:k_test + k_val])
            parts["train"] += list(members[k_test + k_val:])
        return {k: np.sort(np.array(v, dtype=int)) if not s.shuffle else rng.permutation(v)
                for k, v in parts.items()}
    return {"test": idx[:n_test], "validation": idx[n_test:n_test + n_val],
            "train": idx[n_test + n_val:]}


def load_data(spec: Spec, data: Any = None) -> Data:
    """The train / validation / test splits for a spec.

    Args:
        spec: the validated spec.
        data: arrays from the Python API: ``(x, y)``, ``{"x": ..., "y": ...}``, or a dict with
            ``train`` / ``validation`` / ``test`` entries. Overrides ``data.source``.
    """
    input_names = [i.name for i in spec.model.inputs]
    meta: dict[str, Any] = {}
    if data is None:
        if spec.data.source is None:
            raise SpecError("data.source", "no data: give a source in the spec or pass "
                            "data=(x, y) to kspec.fit")
        x, y, label, meta = _read_source(spec.data.source, "data.source")
        whole = _as_split((x, y), input_names, label)
    elif isinstance(data, Mapping) and "train" in data:
        parts = {k: _as_split(v, input_names, f"data[{k!r}]") for k, v in data.items()
                 if v is not None}
        unknown = set(parts) - {"train", "validation", "test"}
        if unknown:
            raise DataError(f"data: unknown split names {sorted(unknown)}; use train, "
                            "validation, test")
        result = Data(parts["train"], parts.get("validation"), parts.get("test"), "<arrays>")
        check_data(result)
        return result
    else:
        label = "<arrays>"
        whole = _as_split(data, input_names, label)
    check_lengths(whole, label)
    index = _partition(len(whole), spec.data, spec.seed, whole.y)
    result = Data(
        train=whole.take(index["train"]),
        validation=whole.take(index["validation"]) if len(index["validation"]) else None,
        test=whole.take(index["test"]) if len(index["test"]) else None,
        source=label,
        meta=meta,
    )
    check_data(result)
    return result


def check_lengths(split: Split, where: str) -> None:
    n = len(split)
    arrays = dict(split.x)
    if isinstance(split.y, dict):
        arrays.update({f"y[{k}]": v for k, v in split.y.items()})
    elif split.y is not None:
        arrays["y"] = split.y
    for k, v in arrays.items():
        if len(v) != n:
            raise DataError(f"{where}: {k} has {len(v)} rows but the features have {n}")


def check_data(data: Data) -> None:
    """Refuse data that would fail (or silently mislead) training: empty or non-finite."""
    for name, split in data.splits().items():
        where = f"{data.source} ({name} split)"
        if len(split) == 0:
            raise DataError(f"{where}: the split is empty")
        check_lengths(split, where)
        for key, arr in split.x.items():
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr))[0]
                raise DataError(
                    f"{where}: feature {key!r} has a non-finite value {arr[tuple(bad)]!r} at row "
                    f"{bad[0]} (index {tuple(int(i) for i in bad)})"
                )
