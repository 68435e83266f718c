"""What the diagnostics read: a run directory (spec, model, metrics) and a spec's data.

Example:
    >>> parts = load_run("runs/quickstart-20261124-110738")  # doctest: +SKIP
    >>> parts.model.name, len(parts.data.test)               # doctest: +SKIP
    ('quickstart', 270)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kspec.errors import SpecError
from kspec.rundir import RunDir
from kspec.spec import Spec


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
    return isinstance(path, (str, Path)) and RunDir.is_run(path)


def read_run(run_dir: str | Path) -> RunParts:
    """The spec and metrics of a run (no TensorFlow import).

    Raises:
        SpecError: ``run_dir`` is not a run directory.
    """
    run = RunDir(run_dir)
    if not is_run_dir(run.path):
        raise SpecError("run", f"{run.path} is not a kspec run directory (no spec.yaml)",
                        value=str(run.path), valid="a folder written by kspec fit")
    return RunParts(run.path, run.read_spec(), run.read_metrics(), run.read_meta())


def load_data_for(spec: Spec, data: Any = None) -> Any:
    """The spec's splits with each output's targets derived, as training saw them."""
    from kspec.train.loop import load_training_data

    return load_training_data(spec, data)


def load_run(run_dir: str | Path, *, data: Any = None, with_data: bool = True) -> RunParts:
    """A finished run with its trained model (compiled with the spec's loss and metrics)
    and, unless ``with_data`` is false, its data reloaded from the spec's source.

    Raises:
        SpecError: not a run directory, or a run without ``model.keras`` (unfinished).
    """
    from kspec.compiler.loading import load_model
    from kspec.train.compile import compile_model

    parts = read_run(run_dir)
    run = RunDir(parts.run_dir)
    if not run.has_model():
        raise SpecError("run", f"{parts.run_dir} has no model.keras (did the run finish?)",
                        value=str(parts.run_dir))
    parts.model = load_model(run.model_file, compile=False)
    compile_model(parts.model, parts.spec)
    if with_data:
        parts.data = load_data_for(parts.spec, data)
    return parts
