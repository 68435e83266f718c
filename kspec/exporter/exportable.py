"""What can be exported: a run directory, a ``Run``, a ``.keras`` file or a ``keras.Model``,
and the sample of real inputs the parity check runs on."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kspec.compiler.loading import load_model
from kspec.errors import DataError, SpecError
from kspec.exporter.errors import ExportError
from kspec.rundir import RunDir
from kspec.spec import Spec
from kspec.validation import load_spec


@dataclass
class Source:
    """A model to export with everything known about it.

    Attributes:
        model: the trained ``keras.Model``.
        spec: the resolved spec, when known.
        metrics: final metrics per split (from ``metrics.json`` or the ``Run``).
        meta: the run's ``meta.json`` (seed, versions, ...), when known.
        origin: where it came from (a path or ``<keras.Model>``).
        data: the run's loaded ``Data`` (splits), when at hand.
    """

    model: Any
    spec: Spec | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str = "<keras.Model>"
    data: Any = None


def resolve(obj: Any, spec: Any = None) -> Source:
    """Turn what the user passed into a :class:`Source`.

    Args:
        obj: a run directory (``RUN/model.keras``), a ``.keras`` file, a ``kspec.Run`` or a
            ``keras.Model``.
        spec: the spec of a bare model (optional; a run brings its own).
    """
    spec = load_spec(spec) if spec is not None and not isinstance(spec, Spec) else spec
    if hasattr(obj, "model") and hasattr(obj, "run_dir") and hasattr(obj, "spec"):  # a Run
        meta = RunDir(obj.run_dir).read_meta()
        return Source(obj.model, spec or obj.spec, dict(obj.metrics), meta, str(obj.run_dir),
                      getattr(obj, "data", None))
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        if path.is_dir():
            run = RunDir(path)
            if not run.has_model():
                raise ExportError(f"{path} is not a finished kspec run directory (no "
                                  "model.keras; did the run finish?)")
            if spec is None and RunDir.is_run(path):
                spec = run.read_spec()
            return Source(load_model(run.model_file, compile=False), spec,
                          run.read_metrics(strict=True), run.read_meta(strict=True), str(path))
        if path.suffix == ".keras" and path.is_file():
            return Source(load_model(path, compile=False), spec, origin=str(path))
        raise ExportError(f"cannot export {obj!r}: expected a run directory, a .keras file, "
                          "a kspec Run or a keras.Model")
    import keras

    if isinstance(obj, keras.Model):
        return Source(obj, spec)
    raise ExportError(f"cannot export a {type(obj).__name__}: expected a run directory, a "
                      ".keras file, a kspec Run or a keras.Model")


def _cast(model: Any, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for t in model.inputs:
        if t.name not in arrays:
            raise DataError(f"check sample: no array for input {t.name!r} "
                            f"(received: {sorted(arrays)})")
        out[t.name] = np.asarray(arrays[t.name]).astype(numpy_dtype(t.dtype), copy=False)
    return out


def numpy_dtype(dtype: Any) -> Any:
    """The NumPy dtype for a Keras/TF dtype name (``string`` inputs take Python str)."""
    return object if str(dtype) == "string" else str(dtype)


def _synthetic(model: Any, rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for t in model.inputs:
        shape = [rows, *(d if d is not None else 4 for d in t.shape[1:])]
        dtype = str(t.dtype)
        if dtype.startswith("float"):
            out[t.name] = rng.normal(size=shape).astype(dtype)
        else:
            raise ExportError(
                f"input {t.name!r} has dtype {dtype}: random inputs would be meaningless; "
                "pass sample={...} (a few real rows) or export a run whose spec has a "
                "data source")
    return out


def sample_inputs(source: Source, rows: int, sample: Any = None,
                  seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """Up to ``rows`` real input rows for the parity check, and where they came from.

    Preference: ``sample`` as given; the run's test, validation or train split; the spec's
    data source loaded again; random normal inputs (float inputs only, with a warning).
    """
    model = source.model
    names = [t.name for t in model.inputs]
    if sample is not None:
        arrays = sample if isinstance(sample, Mapping) else {names[0]: sample}
        arrays = _cast(model, arrays)
        return {k: v[:rows] for k, v in arrays.items()}, "given sample"
    data, origin = source.data, None
    if data is None and source.spec is not None and source.spec.data.source is not None:
        from kspec.data.loading import load_data

        try:
            data = source.data = load_data(source.spec)  # kept: its meta has class names
        except (SpecError, DataError, OSError) as e:
            warnings.warn(f"export check: cannot reload the run's data ({e}); using random "
                          "inputs instead", stacklevel=3)
    if data is not None:
        for split_name in ("test", "validation", "train"):
            split = getattr(data, split_name, None)
            if split is not None and len(split):
                origin = f"{split_name} split of {getattr(data, 'source', 'the data')}"
                # A streamed split (kspec.data.stream) reads its first rows from disk.
                x = split.head(rows).x if getattr(split, "streamed", False) else split.x
                return {k: v[:rows] for k, v in _cast(model, x).items()}, origin
    warnings.warn("export check: no real inputs at hand (pass sample=...); comparing on "
                  "random normal inputs", stacklevel=3)
    return _synthetic(model, rows, seed), "synthetic normal inputs"
