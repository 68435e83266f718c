"""``kspec.fit``: train a spec through the training loop and record the run directory."""

from __future__ import annotations

import contextlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

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
        continued_from: for a run continued from a finished one (``more_epochs``), that
            run and how many epochs it had trained.
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
    continued_from: dict[str, Any] | None = None
    compute: dict[str, Any] | None = None

    @property
    def test_metrics(self) -> dict[str, float] | None:
        return self.metrics.get("test")

    def summary(self) -> str:
        """The one-screen summary printed at the end of ``kspec fit``."""
        lines = [f"run      {self.run_dir}", f"spec     {self.spec.name} (seed {self.spec.seed})",
                 f"epochs   {len(next(iter(self.history.values()), []))} in {self.seconds:.1f}s"]
        if self.continued_from:
            c = self.continued_from
            lines.append(f"from     {c['run']} (its {c['epochs']} epochs come first; "
                         f"optimizer state {c.get('optimizer_state', 'new')})")
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


def fit(spec: Any, data: Any = None, *, out: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None, resume: str | Path | None = None,
        more_epochs: int | None = None, callbacks: list | None = None, **kwargs: Any) -> Run:
    """Train the model a spec describes and record the run.

    Args:
        spec: a path, YAML/JSON text, dict or Spec (None with ``resume``).
        data: in-memory data, ``(x, y)`` or ``{"train": (x, y), "test": (x, y)}``; default:
            the spec's ``data.source``.
        out: folder in which a new run directory is made (default ``runs``; for
            ``more_epochs``, the folder of the run continued); ``base: {run: NAME}`` in a
            spec looks for earlier runs here first.
        overrides: values by key path, ``{"model.layers[0].units": 64}``.
        resume: an interrupted run directory to continue in place from its last finished
            epoch, with its own spec (a finished run is refused and left unchanged).
        more_epochs: with ``resume`` naming a finished run: train it this many more epochs
            from its model into a new run directory in ``out`` (``meta.json`` records
            ``continued_from``); ``overrides`` may then change ``training.*`` values.
        callbacks: extra Keras callbacks.
        **kwargs: training keys (``epochs=2``, ``batch_size=64``, ...), ``seed``, ``name``.

    Returns:
        A :class:`Run` with the trained model, history, metrics and run directory. Training
        phases (``training.phases``) run one after the other; an ``ensemble`` section trains
        its members and returns their average as one model.

    Raises:
        kspec.SpecError: a bad spec or resume request. kspec.DataError: bad data;
        ``RunWriteError`` (a DataError) when the disk is full or read-only.

    Example:
        >>> run = fit("specs/quickstart.yaml", epochs=1)
        >>> sorted(run.metrics)
        ['test', 'train', 'validation']
    """
    from kspec.compiler.transfer import resolved_bases, run_roots
    from kspec.train.resume import plan_resume

    merged = dict(overrides or {})
    merged.update(_apply_kwargs(kwargs))
    plan = None
    if resume is not None:
        plan = plan_resume(resume, more_epochs, merged)  # refuses before writing anything
        spec, merged = plan.spec, plan.overrides
        if out is None and plan.run is None:  # a continued run goes beside the one it continues
            out = plan.roots[0]
    out = "runs" if out is None else out
    roots: list[str | Path] = [*(plan.roots if plan else []), out]
    if resume is None and more_epochs is not None:
        raise SpecError("more_epochs", "continues a finished run: give resume=RUN_DIR too")
    with run_roots(*roots, pinned=plan.pinned if plan else None):
        spec, loaded, built = _setup(spec, data, merged)
        bases = resolved_bases(spec)
    continued = plan.continued_from if plan else None
    if plan is not None and plan.run is not None:
        run = plan.run
        continued = plan.meta.get("continued_from")
        run.clean_temporary()  # what a killed process left half-written
        meta = dict(plan.meta)
        meta.update(status="running", resumed=[*meta.get("resumed", []), rundir.now()])
        for key in ("error", "ended", "seconds"):
            meta.pop(key, None)
        run.write_meta(meta)
    else:
        run = _new_run(out, spec)
        meta = {"seed": spec.seed, "versions": rundir.library_versions(),
                "started": rundir.now(), "status": "running", "data": loaded.source,
                "command": sys.argv[:1],
                "rows": {name: len(split) for name, split in loaded.splits().items()}}
        if continued is not None:
            meta["continued_from"] = continued
        if bases:
            meta["bases"] = bases
        if loaded.meta.get("class_names") is not None:  # kspec predict names the classes
            meta["class_names"] = loaded.meta["class_names"]
        meta["compute"] = _compute(built, spec)
        _start_record(run, spec, meta)

    start = time.perf_counter()
    try:
        trained = _train(spec, loaded, built, run, continued, meta, callbacks or ())
        seconds = time.perf_counter() - start
        hist = trained.history
        with ThreadPoolExecutor(1, thread_name_prefix="kspec-plot") as background:
            # The history plot needs only the history: it is drawn while TensorFlow
            # evaluates every split (its ops release the GIL), not after.
            plotted = background.submit(_plot, hist, run, spec.name)
            metrics = loop.evaluate(trained.model, spec, loaded)
            model, task_weights = loop.final_model(trained.model, spec)
            run.save_model(model)
            run.write_metrics(metrics)
            if trained.members is not None:
                run.write_members(trained.members)
                # The ensemble's own history: the members' mean per epoch.
                run.write_history(_rows(trained.history))
            plotted.result()  # its error (a full disk) is this run's error
        meta.update(status="finished", ended=rundir.now(), seconds=round(seconds, 3),
                    epochs=len(hist.get("loss", [])), phases=trained.phases)
        if task_weights is not None:
            meta["task_weights"] = task_weights
        run.write_meta(meta)
    except BaseException as e:
        reported = _failed(run, meta, e)
        if reported is e:
            raise
        raise reported from e
    # The record is complete: the resume state is of no further use.
    run.remove_backups()
    return Run(model=model, history=hist, metrics=metrics, run_dir=run.path, spec=spec,
               seconds=seconds, data=loaded, phases=trained.phases, members=trained.members,
               task_weights=task_weights, continued_from=meta.get("continued_from"),
               compute=meta.get("compute"))


def _train(spec: Spec, loaded: Any, built: Any, run: RunDir, continued: dict | None,
           meta: dict, extra: Sequence[Any]) -> loop.Trained:
    if isinstance(built, loop.Ensemble):
        return loop.train_ensemble(spec, loaded, built, run=run, extra_callbacks=extra)
    if continued is None:
        return loop.train(built, spec, loaded, run=run, extra_callbacks=extra)
    from kspec.train.resume import continue_model, prior_history

    # The finished run's model and optimizer state; a backup of this run, if any, is
    # loaded over them by the loop.
    meta["continued_from"]["optimizer_state"] = continue_model(built, spec, continued)
    return loop.train(built, spec, loaded, run=run, extra_callbacks=extra,
                      epochs=spec.training.epochs, initial_epoch=continued["epochs"],
                      prior_history=prior_history(continued))


def _plot(hist: dict, run: RunDir, title: str) -> None:
    if hist:
        from kspec.train.plots import plot_history

        plot_history(hist, run.history_png, title=title)


def _compute(built: Any, spec: Spec) -> dict[str, Any]:
    """Precision, XLA as compiled, strategy, devices and batch sizes (docs/scale.md)."""
    from kspec.train.scale import describe

    return describe(built.model if isinstance(built, loop.Ensemble) else built, spec)


def _new_run(out: str | Path, spec: Spec) -> RunDir:
    try:
        return RunDir.create(out, spec.name)
    except OSError as e:
        err = rundir.disk_error(e, out)
        if err is None:
            raise
        raise rundir.RunWriteError(f"cannot start a run of {spec.name} in {out}: {err}") from e


def _start_record(run: RunDir, spec: Spec, meta: dict) -> None:
    """spec.yaml and meta.json of a new run; on a full disk the empty folder is removed."""
    try:
        run.write_spec(spec)
        run.write_meta(meta)
    except rundir.RunWriteError as e:
        run.spec_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run.path.rmdir()
        raise rundir.RunWriteError(f"cannot start run {run.path}: {e}") from e


def _failed(run: RunDir, meta: dict, error: BaseException) -> BaseException:
    """Mark the run failed and return the error to raise: one line for a full disk."""
    from kspec.train.resume import backup_note

    meta.update(status="failed", error=f"{type(error).__name__}: {error}", ended=rundir.now())
    try:
        run.write_meta(meta)
        marked = "the run is marked failed"
    except Exception:  # noqa: BLE001 - the disk that failed may refuse this too
        marked = "meta.json could not be marked failed either"
    disk = rundir.disk_error(error, run.path) if isinstance(error, Exception) else None
    if disk is not None:
        return rundir.RunWriteError(
            f"run {run.path} stopped: {disk}; {marked}, {backup_note(run)}; free space, "
            f"then: kspec fit --resume {run.path}")
    with contextlib.suppress(AttributeError, TypeError):
        error.kspec_run_dir = str(run.path)  # the CLI writes the traceback there (error.log)
    return error


def _rows(history: dict[str, list[float]]) -> list[dict[str, Any]]:
    n = max((len(v) for v in history.values()), default=0)
    return [{"epoch": i, **{k: v[i] for k, v in history.items() if i < len(v)}}
            for i in range(n)]


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The record of a run: spec, meta, metrics (no model load)."""
    run = RunDir(run_dir)
    return {"spec": run.read_spec(), "meta": run.read_meta(), "metrics": run.read_metrics()}
