"""What the diagnostics read: a run directory (spec, model, metrics) and a spec's data.

Example:
    >>> parts = load_run("runs/quickstart-20261124-110738")  # doctest: +SKIP
    >>> parts.model.name, len(parts.data.test)               # doctest: +SKIP
    ('quickstart', 270)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kspec.errors import DataError, SpecError
from kspec.spec import Spec
from kspec.validation import load_spec


@dataclass
class RunParts:
    """A finished run as the diagnostics use it."""

    run_dir: Path
    spec: Spec
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    data: Any = None


def is_run_dir(path: Any) -> bool:
    """Whether ``path`` is a kspec run directory (it holds ``spec.yaml``)."""
    return isinstance(path, (str, Path)) and Path(path).is_dir() and (
        Path(path) / "spec.yaml").is_file()


def read_run(run_dir: str | Path) -> RunParts:
    """The spec and metrics of a run (no TensorFlow import).

    Raises:
        SpecError: ``run_dir`` is not a run directory.
    """
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise SpecError("run", f"{run_dir} is not a kspec run directory (no spec.yaml)",
                        value=str(run_dir), valid="a folder written by kspec fit")
    with warnings.catch_warnings():  # lint advice was shown when the run trained
        warnings.simplefilter("ignore")
        spec = load_spec(run_dir / "spec.yaml")
    def read(name: str) -> dict:
        file = run_dir / name
        return json.loads(file.read_text()) if file.is_file() else {}

    return RunParts(run_dir, spec, read("metrics.json"), read("meta.json"))


def load_data_for(spec: Spec, data: Any = None) -> Any:
    """The spec's splits with each output's targets derived, as training saw them."""
    from kspec.data.sources import load_data
    from kspec.train.targets import apply_targets

    t = spec.training
    loading = spec
    if t.targets and not (isinstance(t.loss, dict) and "type" not in t.loss):
        # Raw labels are checked against the loss per output (as kspec.fit loads them).
        loss = {name: t.loss for name in spec.model.output_names()}
        loading = spec.model_copy(update={"training": t.model_copy(update={"loss": loss})})
    return apply_targets(spec, load_data(loading, data))


def load_run(run_dir: str | Path, *, data: Any = None, with_data: bool = True) -> RunParts:
    """A finished run with its trained model (compiled with the spec's loss and metrics)
    and, unless ``with_data`` is false, its data reloaded from the spec's source.

    Raises:
        SpecError: not a run directory, or a run without ``model.keras`` (unfinished).
    """
    from kspec.exporter.errors import ExportError
    from kspec.exporter.source import load_keras_model
    from kspec.train.compile import compile_model

    parts = read_run(run_dir)
    file = parts.run_dir / "model.keras"
    if not file.is_file():
        raise SpecError("run", f"{parts.run_dir} has no model.keras (did the run finish?)",
                        value=str(parts.run_dir))
    try:
        parts.model = load_keras_model(file)
    except ExportError as e:
        raise DataError(str(e)) from e
    compile_model(parts.model, parts.spec)
    if with_data:
        parts.data = load_data_for(parts.spec, data)
    return parts
