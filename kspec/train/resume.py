"""Resuming and continuing runs: what ``kspec fit --resume`` may do to a run directory.

- An interrupted run (status ``running`` or ``failed``) continues in place from its last
  backed-up epoch (:mod:`kspec.train.backup`), with its own spec: ``--set`` is refused, as
  it would make the record disagree with what trained (``training.verbose`` only changes
  the display and is not written).
- A finished run is a record: resuming it is refused and changes no file.
- ``more_epochs`` (``kspec fit --resume RUN --more-epochs N``) trains a finished run N more
  epochs from its saved model and optimizer state into a **new** run directory, whose
  ``meta.json`` records ``continued_from``; ``--set`` may change ``training.*`` values
  there (a lower learning rate, another batch size), not the model or the data.

Example:
    >>> plan = plan_resume("runs/quickstart-20261124-110738", None, {})   # doctest: +SKIP
    >>> plan.run.path.name                                               # doctest: +SKIP
    'quickstart-20261124-110738'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kspec.errors import DataError, SpecError
from kspec.rundir import RunDir

DISPLAY_ONLY = ("training.verbose",)  # may be given on resume: changes no record
# Keys a continued run may not change: they would change the model or the data it trains.
_FIXED_TRAINING = ("epochs", "phases", "targets", "loss_weighting")


@dataclass
class ResumePlan:
    """What :func:`kspec.fit` does with ``resume=``.

    Attributes:
        run: the run directory to resume in place (None for a continuation: a new one).
        spec: the spec to train (a file path) and ``overrides`` to apply to it.
        meta: the resumed run's ``meta.json`` (kept and updated), or {} for a new run.
        continued_from: for a continued run, ``{"run": ..., "epochs": ...}``.
        roots, pinned: where transfer bases are looked up, and the ones already chosen.
    """

    run: RunDir | None
    spec: Path
    overrides: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    continued_from: dict[str, Any] | None = None
    roots: list[Path] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)


def plan_resume(resume: str | Path, more_epochs: int | None,
                overrides: Mapping[str, Any]) -> ResumePlan:
    """Check a resume request before anything is written, and say what it will do.

    Raises:
        SpecError: not a run directory; a finished run without ``more_epochs``; an
            unfinished one with it; ``overrides`` that would rewrite the record.
    """
    run = RunDir(resume)
    if not RunDir.is_run(run.path):
        raise SpecError("resume", f"{run.path} is not a kspec run directory (no spec.yaml)")
    meta = run.read_meta()
    status = meta.get("status")
    pinned = meta.get("bases", {})
    if more_epochs is None:
        if status == "finished":
            raise SpecError("resume", f"{run.path} is finished ({meta.get('epochs', '?')} "
                            f"epochs, ended {meta.get('ended', '?')}); nothing was changed. "
                            f"To train it further into a new run directory: kspec fit "
                            f"--resume {run.path} --more-epochs N")
        changed = sorted(k for k in overrides if k not in DISPLAY_ONLY)
        if changed:
            raise SpecError("resume", f"--set {changed[0]}: a resumed run trains with the spec "
                            f"it started with ({run.spec_file}); to change it, continue a "
                            "finished run with --more-epochs N, or start a new run")
        return ResumePlan(run, run.spec_file, dict(overrides), meta, roots=[run.path.parent],
                          pinned=pinned)
    if more_epochs < 1:
        raise SpecError("more_epochs", "should be at least 1", value=more_epochs)
    if status != "finished" or not run.has_model():
        raise SpecError("more_epochs", f"{run.path} is not finished (status: {status}); "
                        f"kspec fit --resume {run.path} (without --more-epochs) continues it")
    spec = run.read_spec()
    if spec.training.phases or spec.ensemble is not None or \
            spec.training.loss_weighting == "uncertainty":
        what = ("trained in phases" if spec.training.phases else "an ensemble"
                if spec.ensemble is not None else "trained with learned loss weighting")
        raise SpecError("more_epochs", f"{run.path} was {what}: such a run cannot be "
                        "continued yet; train a new run with more epochs")
    for key in overrides:
        head, _, rest = key.partition(".")
        if head != "training" or rest.split(".")[0].split("[")[0] in _FIXED_TRAINING:
            raise SpecError(key, "a continued run keeps the model, the data and the epochs "
                            "(--more-epochs) of the run it continues; --set may change "
                            "other training.* values (optimizer, batch_size, callbacks, ...)")
    done = int(meta.get("epochs") or len(run.read_history()))
    merged = {**overrides, "training.epochs": done + more_epochs}
    return ResumePlan(None, run.spec_file, merged, {},
                      continued_from={"run": str(run.path.resolve()), "epochs": done},
                      roots=[run.path.parent], pinned=pinned)


def continue_model(model: Any, spec: Any, continued: dict[str, Any]) -> str:
    """Give ``model`` the weights (and, when the optimizer is unchanged, the optimizer
    state) of the finished run it continues; returns ``"continued"`` or ``"new"`` (the
    optimizer state).

    Raises:
        DataError: the run is gone, or its model does not fit this one.
    """
    from kspec.compiler.loading import load_model

    source = RunDir(continued["run"])
    if not source.has_model():
        raise DataError(f"{source.path}: the run this one continues has no model.keras "
                        "(moved or deleted?)")
    old = load_model(source.model_file)
    ours, theirs = model.weights, old.weights
    if [tuple(v.shape) for v in ours] != [tuple(v.shape) for v in theirs]:
        raise DataError(f"{source.model_file}: its weights do not fit the model of this spec "
                        f"({len(theirs)} weight tensors, the model has {len(ours)})")
    model.set_weights(old.get_weights())
    if source.read_spec().training.optimizer != spec.training.optimizer:
        return "new"
    opt, old_opt = model.optimizer, getattr(old, "optimizer", None)
    old_vars = list(getattr(old_opt, "variables", None) or [])
    if not old_vars:
        return "new"
    from kspec.train.scale import build_optimizer

    build_optimizer(model)
    if [tuple(v.shape) for v in opt.variables] != [tuple(v.shape) for v in old_vars]:
        return "new"
    for v, w in zip(opt.variables, old_vars):
        v.assign(w)
    return "continued"


def prior_history(continued: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The history rows of the run a continued run starts from ([] for other runs)."""
    if continued is None:
        return []
    rows = RunDir(continued["run"]).read_history()
    return [r for r in rows if r["epoch"] < continued["epochs"]]


def backup_note(run: RunDir) -> str:
    """Which backup a failed run keeps, in words (for its error line)."""
    files = sorted(run.backup_root.glob("*/epoch-*.npz"))
    if not files:
        return "no epoch was backed up yet"
    newest = max(int(p.stem.split("-")[1]) for p in files)
    return f"its last backup (after epoch {newest}) is kept"
