"""``kspec.fit``: build, train, evaluate and record a run."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kspec.errors import DataError, SpecError
from kspec.spec import Spec
from kspec.train import rundir
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

    @property
    def test_metrics(self) -> dict[str, float] | None:
        return self.metrics.get("test")

    def summary(self) -> str:
        """The one-screen summary printed at the end of ``kspec fit``."""
        lines = [f"run      {self.run_dir}", f"spec     {self.spec.name} (seed {self.spec.seed})",
                 f"epochs   {len(next(iter(self.history.values()), []))} in {self.seconds:.1f}s"]
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
        lines.append(f"model    {self.run_dir / 'model.keras'}")
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


def class_weights(spec: Spec, y) -> dict[int, float] | None:
    """``training.class_weight`` as Keras wants it; ``balanced`` weighs each class by
    n_rows / (n_classes * n_rows_of_class), computed on the training labels ``y``."""
    cw = spec.training.class_weight
    if cw != "balanced":
        return cw
    if not isinstance(y, np.ndarray) or y.ndim != 1:
        raise SpecError("training.class_weight", "'balanced' needs one integer label per row")
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(len(y) / (len(classes) * n)) for c, n in zip(classes, counts)}


def _callbacks(spec: Spec, run_dir: Path, has_validation: bool, *,
               csv: Path | None = None, backup: Path | None = None, train: Any = None,
               tag: str = ""):
    import keras

    from kspec.train.diagnostics import diagnostics_callbacks, tensorboard_callback

    cb = spec.training.callbacks
    out = [keras.callbacks.CSVLogger(str(csv or run_dir / "history.csv"), append=True)]
    if cb.backup_and_restore:
        # Resumes from the last finished epoch if this run directory was interrupted.
        out.append(keras.callbacks.BackupAndRestore(str(backup or run_dir / "backup")))

    def monitor(name: str, path: str) -> str:
        if name.startswith("val_") and not has_validation:
            raise SpecError(path, f"monitors {name!r} but the data has no validation split",
                            valid="a training metric such as 'loss', or add data.splits.validation")
        return name

    if cb.early_stopping:
        es = cb.early_stopping
        out.append(keras.callbacks.EarlyStopping(
            monitor=monitor(es.monitor, "training.callbacks.early_stopping.monitor"),
            patience=es.patience, min_delta=es.min_delta, mode=es.mode,
            restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch))
    if cb.checkpoint:
        ck = cb.checkpoint
        out.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoint.keras"),
            monitor=monitor(ck.monitor, "training.callbacks.checkpoint.monitor"),
            save_best_only=ck.save_best_only, mode=ck.mode))
    if cb.reduce_lr_on_plateau:
        rl = cb.reduce_lr_on_plateau
        out.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor(rl.monitor, "training.callbacks.reduce_lr_on_plateau.monitor"),
            factor=rl.factor, patience=rl.patience, min_lr=rl.min_lr))
    if cb.tensorboard:
        out.append(tensorboard_callback(cb.tensorboard, run_dir))
    out += diagnostics_callbacks(spec, run_dir, train, tag=tag)
    out.append(_NonFinite())
    return out


def _NonFinite():
    import keras

    class StopOnNonFinite(keras.callbacks.TerminateOnNaN):
        """Stop at a NaN/inf loss and remember it, so the run is recorded as failed."""

        failed_at: int | None = None

        def on_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.failed_at = batch
            super().on_batch_end(batch, logs)

    return StopOnNonFinite()


def _TaskWeights():  # noqa: N802 - builds a Keras callback lazily
    import keras

    class TaskWeights(keras.callbacks.Callback):
        """Log the learned weight exp(-s) of each output's loss every epoch."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs.update({f"{k}_weight": v for k, v in self.model.task_weights().items()})

    return TaskWeights()


def prepare(spec: Any, data: Any = None, overrides: Mapping[str, Any] | None = None):
    """Validate the spec, load the data and build the compiled model (no training).

    Returns ``(spec, data, model)``; for a multi-output model the data's labels are already
    split into one target per output (``training.targets``).

    Example:
        >>> spec, data, model = prepare("specs/multitask.yaml")  # doctest: +SKIP
        >>> model.output_names  # doctest: +SKIP
        ['progression', 'high_risk']
    """
    from kspec.compiler.model import build_model, set_seed
    from kspec.data.preprocess import input_layers
    from kspec.data.sources import load_data
    from kspec.train.compile import compile_model, wrap_for_loss_weighting
    from kspec.train.targets import apply_targets

    spec = load_spec(spec, overrides or None)
    set_seed(spec.seed)
    loaded = apply_targets(spec, load_data(_for_loading(spec), data))
    model = build_model(spec, loaded.input_shapes(), input_layers(spec, loaded))
    if spec.training.loss_weighting == "uncertainty" and spec.ensemble is not None:
        raise SpecError("ensemble", "an ensemble of models with learned uncertainty weighting "
                        "is not supported", valid="training.loss_weighting: fixed")
    model = wrap_for_loss_weighting(model, spec)
    compile_model(model, spec)
    return spec, loaded, model


def _for_loading(spec: Spec) -> Spec:
    """The spec as ``load_data`` should see it.

    ``load_data`` checks raw labels against the loss; with ``training.targets`` the loss
    applies to the *derived* targets (checked in ``apply_targets``), so the raw labels are
    loaded with the loss given per output, which that check skips.
    """
    t = spec.training
    if not t.targets or (isinstance(t.loss, dict) and "type" not in t.loss):
        return spec
    loss = {name: t.loss for name in spec.model.output_names()}
    return spec.model_copy(update={"training": t.model_copy(update={"loss": loss})})


def train_model(model: Any, spec: Spec, train: Any, validation: Any, run_dir: Path, *,
                callbacks: list | None = None, tag: str = "") -> tuple[dict, list[dict]]:
    """Train a compiled ``model`` on the splits, phase by phase; record CSV history.

    Args:
        tag: names this model's files in the run directory (ensemble members: ``member0``).

    Returns:
        The joined history and one record per phase.

    Raises:
        DataError: the loss became NaN/inf (the run is kept for inspection).
    """
    from kspec.data.pipeline import to_dataset
    from kspec.train.compile import compile_model
    from kspec.train.phases import run_phases

    t = spec.training
    if t.class_weight is not None and len(spec.model.output_names()) > 1:
        raise SpecError("training.class_weight", "class weights apply to a model with one "
                        "output; this one has outputs "
                        f"{spec.model.output_names()}", value=t.class_weight,
                        valid="no class_weight (weight rows with sample weights instead)")
    train_ds = to_dataset(train, t.batch_size, shuffle=t.shuffle, seed=spec.seed,
                          cache=spec.data.cache)
    val_ds = (to_dataset(validation, t.batch_size, cache=spec.data.cache)
              if validation is not None else None)
    csv = run_dir / (f"history_{tag}.csv" if tag else "history.csv")
    cbs_used: list = []

    def fit_one(index: int, initial_epoch: int, epochs: int):
        backup = run_dir / "backup" / f"{tag or 'model'}_phase{index}"
        cbs = _callbacks(spec, run_dir, val_ds is not None, csv=csv, backup=backup,
                         train=train, tag=tag)
        if hasattr(model, "task_weights"):
            cbs.insert(0, _TaskWeights())  # first, so the CSV and history see its logs
        cbs += list(callbacks or [])
        cbs_used[:] = cbs
        history = model.fit(
            train_ds, validation_data=val_ds, initial_epoch=initial_epoch, epochs=epochs,
            steps_per_epoch=t.steps_per_epoch, class_weight=class_weights(spec, train.y),
            callbacks=cbs, verbose=t.verbose,
            shuffle=False,  # the dataset is shuffled (seeded) by to_dataset
        )
        nonfinite = next((c for c in cbs if hasattr(c, "failed_at")), None)
        if nonfinite is not None and nonfinite.failed_at is not None:
            raise DataError(
                f"training stopped: the loss became NaN/inf in epoch "
                f"{initial_epoch + len(history.epoch)} (run kept in {run_dir}); lower the "
                "learning rate or check the data for extreme values"
            )
        return history

    def recompile(optimizer: Any, path: str) -> None:
        compile_model(model, spec, optimizer=optimizer, optimizer_path=path)

    return run_phases(model, spec, fit_one, recompile)


def evaluate_splits(model: Any, spec: Spec, data: Any) -> dict[str, dict[str, float]]:
    """Metrics of ``model`` on every split (and TTA metrics when the spec asks for them)."""
    from kspec.data.pipeline import to_dataset

    metrics = {}
    for name, split in data.splits().items():
        ds = to_dataset(split, spec.training.batch_size, cache=False)
        values = model.evaluate(ds, verbose=0, return_dict=True)
        metrics[name] = {k: float(v) for k, v in values.items()}
    tta = spec.training.tta
    if tta is not None:
        from kspec.train.tta import evaluate_tta

        for name in tta.splits:
            split = data.splits().get(name)
            if split is not None:
                metrics[f"{name}_tta"] = evaluate_tta(
                    model, split, spec, scheme=tta.scheme, crop_fraction=tta.crop_fraction)
    return metrics


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
        run_dir = Path(resume)
        if not (run_dir / "spec.yaml").is_file():
            raise SpecError("resume", f"{run_dir} is not a kspec run directory (no spec.yaml)")
        spec = run_dir / "spec.yaml"
        # A resumed run keeps the transfer base it started from.
        roots.insert(0, run_dir.parent)
        try:
            pinned = json.loads((run_dir / "meta.json").read_text()).get("bases", {})
        except (OSError, ValueError):
            pinned = {}
    with run_roots(*roots, pinned=pinned):
        spec, loaded, model = prepare(spec, data, merged)
        bases = resolved_bases(spec)
    if resume is None:
        run_dir = rundir.new_run_dir(out, spec.name)
    elif len(spec.training.phases) > 1 or spec.ensemble is not None:
        # Phases and members are trained in one sequence that a Keras backup cannot
        # resume midway (each phase recompiles): start the run over, cleanly.
        for old in run_dir.glob("history*.csv"):
            old.unlink()
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
    rundir.write_spec(run_dir, spec)
    meta = {"seed": spec.seed, "versions": rundir.library_versions(), "started": rundir.now(),
            "status": "running", "data": loaded.source, "command": sys.argv[:1],
            "rows": {name: len(split) for name, split in loaded.splits().items()}}
    if bases:
        meta["bases"] = bases
    rundir.write_json(run_dir / "meta.json", meta)

    start = time.perf_counter()
    members = None
    try:
        if spec.ensemble is not None:
            from kspec.train.ensemble import train_ensemble

            with run_roots(*roots, pinned=bases):
                model, hist, phases, members = train_ensemble(
                    spec, loaded, model, run_dir, callbacks=callbacks)
        else:
            hist, phases = train_model(model, spec, loaded.train, loaded.validation, run_dir,
                                       callbacks=callbacks)
    except BaseException as e:
        meta.update(status="failed", error=f"{type(e).__name__}: {e}", ended=rundir.now())
        rundir.write_json(run_dir / "meta.json", meta)
        raise
    seconds = time.perf_counter() - start
    # Training finished: the per-phase resume state is of no further use.
    shutil.rmtree(run_dir / "backup", ignore_errors=True)

    metrics = evaluate_splits(model, spec, loaded)
    task_weights = None
    if hasattr(model, "task_weights"):
        # Save and return the plain multi-output model (what export and predict expect),
        # compiled with the learned weights; the weights are recorded in meta.json.
        from kspec.train.compile import compile_model

        task_weights = model.task_weights()
        model = compile_model(model.inner, spec, loss_weights=task_weights)
        model.optimizer.build(model.trainable_variables)  # saved state matches on load
    rundir.save_model_atomic(model, run_dir / "model.keras")
    rundir.write_json(run_dir / "metrics.json", metrics)
    if members is not None:
        rundir.write_json(run_dir / "members.json", members)
    if hist:
        from kspec.train.plots import plot_history

        plot_history(hist, run_dir / "history.png", title=spec.name)
    meta.update(status="finished", ended=rundir.now(), seconds=round(seconds, 3),
                epochs=len(hist.get("loss", [])), phases=phases)
    if task_weights is not None:
        meta["task_weights"] = task_weights
    rundir.write_json(run_dir / "meta.json", meta)
    return Run(model=model, history=hist, metrics=metrics, run_dir=run_dir, spec=spec,
               seconds=seconds, data=loaded, phases=phases, members=members,
               task_weights=task_weights)


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The record of a finished run: spec, meta, metrics (no model load)."""
    run_dir = Path(run_dir)
    return {
        "spec": load_spec(run_dir / "spec.yaml"),
        "meta": json.loads((run_dir / "meta.json").read_text()),
        "metrics": json.loads((run_dir / "metrics.json").read_text())
        if (run_dir / "metrics.json").exists() else {},
    }
