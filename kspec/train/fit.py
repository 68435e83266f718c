"""``kspec.fit``: train a spec through the training loop and record the run directory."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kspec import rundir
from kspec.errors import SpecError
from kspec.rundir import RunDir
from kspec.spec import Spec
from kspec.train import loop
from kspec.validation import load_spec

_TRAINING_KEYS = ("batch_size", "epochs", "steps_per_epoch", "shuffle", "verbose",
                  "optimizer", "loss", "metrics", "class_weight")


@dataclass
class Run:
    """The result of :func:`fit`.

    Attributes:
        model: the trained ``keras.Model``.
        history: per-epoch metrics, ``{"loss": [...], "val_loss": [...], ...}``.
        metrics: final metrics per split, ``{"train": {...}, "validation": {...}, ...}``.
        test_metrics: ``metrics["test"]`` when there is a test split, else None.
        run_dir: where the run was written.
        spec: the resolved spec that produced it.
        phases: one record per training phase (name, first epoch, epochs, trainable weights).
        members: for an ensemble, each member's seed and metrics per split.
        task_weights: with learned uncertainty weighting, each output's final loss weight.
    """

    model: Any
    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]]
    run_dir: Path
    spec: Spec
    seconds: float = 0.0
    data: Any = field(default=None, repr=False)
    phases: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] | None = None
    task_weights: dict[str, float] | None = None
    compute: dict[str, Any] | None = None

    @property
    def test_metrics(self) -> dict[str, float] | None:
        return self.metrics.get("test")

    def summary(self) -> str:
        """The one-screen summary printed at the end of ``kspec fit``."""
        lines = [f"run      {self.run_dir}", f"spec     {self.spec.name} (seed {self.spec.seed})",
                 f"epochs   {len(next(iter(self.history.values()), []))} in {self.seconds:.1f}s"]
        if self.compute:
            from kspec.train.scale import summary_line

            lines.append(summary_line(self.compute))
        if len(self.phases) > 1:
            lines += [f"phase    {p['name']}: epochs {p['first_epoch']}-"
                      f"{p['first_epoch'] + p['epochs'] - 1}, {p['trainable_weights']} trainable "
                      "weight tensors" for p in self.phases]
        if self.task_weights:
            lines.append("weights  " + ", ".join(f"{k} {v:.3f}"
                                                for k, v in self.task_weights.items())
                         + " (learned uncertainty weighting)")
        from kspec.train.error_rates import error_line

        lines += error_line(self.spec, self.metrics)
        names = sorted({k for split in self.metrics.values() for k in split})
        order = ("train", "validation", "test", "train_tta", "validation_tta", "test_tta")
        splits = [s for s in order if s in self.metrics]
        lines.append("")
        lines.append(f"{'metric':<28}" + "".join(f"{s:>15}" for s in splits))
        for name in names:
            row = f"{name:<28}"
            for s in splits:
                v = self.metrics[s].get(name)
                row += f"{v:>15.4f}" if isinstance(v, (int, float)) else f"{'':>15}"
            lines.append(row)
        if self.members:
            from kspec.train.ensemble import members_table

            lines += ["", *members_table(self.members, self.metrics)]
        lines.append("")
        lines.append(f"model    {RunDir(self.run_dir).model_file}")
        return "\n".join(lines)


def _apply_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in kwargs.items():
        if key in _TRAINING_KEYS:
            out[f"training.{key}"] = value
        elif key in ("seed", "name", "description"):
            out[key] = value
        else:
            raise TypeError(
                f"fit() got an unexpected keyword {key!r}; training keys "
                f"({', '.join(_TRAINING_KEYS)}), seed and name are accepted directly, other "
                "values through overrides={'model.layers[0].units': 64}"
            )
    return out


def prepare(spec: Any, data: Any = None, overrides: Mapping[str, Any] | None = None):
    """Validate the spec, load the data and build the compiled model (no training).

    Returns ``(spec, data, model)``; for a multi-output model the data's labels are already
    split into one target per output (``training.targets``).

    Example:
        >>> spec, data, model = prepare("specs/multitask.yaml")  # doctest: +SKIP
        >>> model.output_names  # doctest: +SKIP
        ['progression', 'high_risk']
    """
    spec, loaded, built = _setup(spec, data, overrides)
    return spec, loaded, built.model if isinstance(built, loop.Ensemble) else built


def _setup(spec: Any, data: Any, overrides: Mapping[str, Any] | None):
    """``(spec, data, model or loop.Ensemble)``: validated, loaded, built and compiled."""
    from kspec.compiler.model import set_seed

    spec = load_spec(spec, overrides or None)
    set_seed(spec.seed)  # the data's splits and shuffles repeat with the seed
    loaded = loop.load_training_data(spec, data)
    if spec.ensemble is not None:
        return spec, loaded, loop.build_ensemble(spec, loaded)
    return spec, loaded, loop.build_compiled(spec, loaded)


def fit(spec: Any, data: Any = None, *, out: str | Path = "runs",
        overrides: Mapping[str, Any] | None = None, resume: str | Path | None = None,
        callbacks: list | None = None, **kwargs: Any) -> Run:
    """Train the model a spec describes and record the run.

    Args:
        spec: a path, YAML/JSON text, dict or Spec.
        data: in-memory data, ``(x, y)`` or ``{"train": (x, y), "test": (x, y)}``; default:
            the spec's ``data.source``.
        out: folder in which a new run directory is made; ``base: {run: NAME}`` in a spec
            looks for earlier runs here first.
        overrides: values by key path, ``{"model.layers[0].units": 64}``.
        resume: an interrupted run directory to continue (its spec is used).
        callbacks: extra Keras callbacks.
        **kwargs: training keys (``epochs=2``, ``batch_size=64``, ...), ``seed``, ``name``.

    Returns:
        A :class:`Run` with the trained model, history, metrics and run directory. Training
        phases (``training.phases``) run one after the other; an ``ensemble`` section trains
        its members and returns their average as one model.

    Example:
        >>> run = fit("specs/quickstart.yaml", epochs=1)
        >>> sorted(run.metrics)
        ['test', 'train', 'validation']
    """
    from kspec.compiler.transfer import resolved_bases, run_roots

    merged = dict(overrides or {})
    merged.update(_apply_kwargs(kwargs))
    roots: list[str | Path] = [out]
    pinned: dict[str, str] = {}
    if resume is not None:
        run = RunDir(resume)
        if not RunDir.is_run(run.path):
            raise SpecError("resume", f"{run.path} is not a kspec run directory (no spec.yaml)")
        spec = run.spec_file
        # A resumed run keeps the transfer base it started from.
        roots.insert(0, run.path.parent)
        pinned = run.read_meta().get("bases", {})
    with run_roots(*roots, pinned=pinned):
        spec, loaded, built = _setup(spec, data, merged)
        bases = resolved_bases(spec)
    if resume is None:
        run = RunDir.create(out, spec.name)
    elif len(spec.training.phases) > 1 or spec.ensemble is not None:
        # Phases and members are trained in one sequence that a Keras backup cannot
        # resume midway (each phase recompiles): start the run over, cleanly.
        for old in run.history_csvs():
            old.unlink()
        run.remove_backups()
    run.write_spec(spec)
    meta = {"seed": spec.seed, "versions": rundir.library_versions(), "started": rundir.now(),
            "status": "running", "data": loaded.source, "command": sys.argv[:1],
            "rows": {name: len(split) for name, split in loaded.splits().items()}}
    if bases:
        meta["bases"] = bases
    from kspec.train.scale import describe

    # Precision, XLA as compiled, strategy, devices and batch sizes (docs/scale.md).
    meta["compute"] = describe(built.model if isinstance(built, loop.Ensemble) else built, spec)
    if loaded.meta.get("class_names") is not None:  # kspec predict names the classes
        meta["class_names"] = loaded.meta["class_names"]
    run.write_meta(meta)

    start = time.perf_counter()
    try:
        if isinstance(built, loop.Ensemble):
            trained = loop.train_ensemble(spec, loaded, built, run=run,
                                          extra_callbacks=callbacks or ())
        else:
            trained = loop.train(built, spec, loaded, run=run, extra_callbacks=callbacks or ())
    except BaseException as e:
        meta.update(status="failed", error=f"{type(e).__name__}: {e}", ended=rundir.now())
        run.write_meta(meta)
        with contextlib.suppress(AttributeError, TypeError):
            e.kspec_run_dir = str(run.path)  # the CLI writes the traceback there (error.log)
        raise
    seconds = time.perf_counter() - start
    # Training finished: the per-phase resume state is of no further use.
    run.remove_backups()

    metrics = loop.evaluate(trained.model, spec, loaded)
    model, task_weights = loop.final_model(trained.model, spec)
    run.save_model(model)
    run.write_metrics(metrics)
    if trained.members is not None:
        run.write_members(trained.members)
    hist = trained.history
    if hist:
        from kspec.train.plots import plot_history

        plot_history(hist, run.history_png, title=spec.name)
    meta.update(status="finished", ended=rundir.now(), seconds=round(seconds, 3),
                epochs=len(hist.get("loss", [])), phases=trained.phases)
    if task_weights is not None:
        meta["task_weights"] = task_weights
    run.write_meta(meta)
    return Run(model=model, history=hist, metrics=metrics, run_dir=run.path, spec=spec,
               seconds=seconds, data=loaded, phases=trained.phases, members=trained.members,
               task_weights=task_weights, compute=meta["compute"])


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The record of a run: spec, meta, metrics (no model load)."""
    run = RunDir(run_dir)
    return {"spec": run.read_spec(), "meta": run.read_meta(), "metrics": run.read_metrics()}
