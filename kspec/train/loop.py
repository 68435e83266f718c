"""The one training loop: build and compile, callbacks, phases, the non-finite-loss stop,
class weights, ensembles and evaluation.

``kspec.fit`` (:mod:`kspec.train.fit`), ensemble members and search trials
(:mod:`kspec.search.hyper`) all train through these functions, so a training feature (a
callback, a precision policy, a distribution strategy) is written once, here.

Example:
    >>> spec = load_spec("specs/quickstart.yaml")  # doctest: +SKIP
    >>> data = load_training_data(spec)  # doctest: +SKIP
    >>> model = build_compiled(spec, data)  # doctest: +SKIP
    >>> trained = train(model, spec, data)  # doctest: +SKIP
    >>> evaluate(trained.model, spec, data)["test"]["accuracy"] > 0.9  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from kspec.errors import DataError, SpecError
from kspec.rundir import RunDir
from kspec.spec import Spec


class NonFiniteLoss(DataError):
    """The loss became NaN or infinite; ``epoch`` is the 1-based epoch it happened in."""

    def __init__(self, epoch: int, where: str = "") -> None:
        self.epoch = epoch
        kept = f" (run kept in {where})" if where else ""
        super().__init__(f"training stopped: the loss became NaN/inf in epoch {epoch}{kept}; "
                         "lower the learning rate or check the data for extreme values")


@dataclass
class Trained:
    """What :func:`train` and :func:`train_ensemble` return.

    Attributes:
        model: the trained model (for an ensemble, the members averaged into one model).
        history: per-epoch metrics (for an ensemble, the members' mean).
        phases: one record per training phase (name, first epoch, epochs, trainable weights).
        members: for an ensemble, each member's seed and metrics per split.
    """

    model: Any
    history: dict[str, list[float]]
    phases: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] | None = None


# -- data ---------------------------------------------------------------------------------------
def load_training_data(spec: Spec, data: Any = None) -> Any:
    """The spec's data (or ``data`` from the Python API), split and checked, with one target
    per output derived as ``training.targets`` says."""
    from kspec.data.loading import load_data
    from kspec.train.scale import prepare
    from kspec.train.targets import apply_targets

    prepare(spec)  # the machine can run the spec: checked before TensorFlow starts working
    return apply_targets(spec, load_data(for_loading(spec), data))


def for_loading(spec: Spec) -> Spec:
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


def class_weights(spec: Spec, y: Any) -> dict[int, float] | None:
    """``training.class_weight`` as Keras wants it; ``balanced`` weighs each class by
    n_rows / (n_classes * n_rows_of_class), computed on the training labels ``y``."""
    cw = spec.training.class_weight
    if cw is None:
        return None
    if len(spec.model.output_names()) > 1:
        raise SpecError("training.class_weight", "class weights apply to a model with one "
                        f"output; this one has outputs {spec.model.output_names()}", value=cw,
                        valid="no class_weight (weight rows with sample weights instead)")
    if cw != "balanced":
        return cw
    if not isinstance(y, np.ndarray) or y.ndim != 1:
        raise SpecError("training.class_weight", "'balanced' needs one integer label per row")
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(len(y) / (len(classes) * n)) for c, n in zip(classes, counts)}


# -- models -------------------------------------------------------------------------------------
def build_compiled(spec: Spec, data: Any, *, seed: int | None = None) -> Any:
    """The spec's model, built on ``data`` (shapes, fitted preprocessing) and compiled.

    Args:
        spec: the validated spec (its ``ensemble`` section is ignored: see
            :func:`build_ensemble`).
        data: the loaded data (:func:`load_training_data`).
        seed: seeds the weights (default ``spec.seed``; ensemble members and repeated search
            executions pass their own).

    With ``training.loss_weighting: uncertainty`` the model is the learned-weighting wrapper
    (see :func:`final_model` for the plain model after training). The model is built and
    compiled under the spec's precision policy and distribution strategy
    (:mod:`kspec.train.scale`); with ``jit_compile: true`` augmentation XLA cannot compile
    runs in the training pipeline instead (:mod:`kspec.train.xla`).
    """
    from kspec.compiler.model import build_model, set_seed
    from kspec.data.preprocess import input_layers
    from kspec.train import scale, xla
    from kspec.train.compile import compile_model, wrap_for_loss_weighting

    with scale.scope(spec):
        layers, host = xla.split_for_xla(spec, input_layers(spec, data))
        set_seed(spec.seed if seed is None else seed)
        model = build_model(spec, data.input_shapes(), layers, seed=False)
        model = wrap_for_loss_weighting(model, spec)
        xla.check_layers(model, spec)
        compile_model(model, spec)
        xla.check_compiled(model, spec)
    xla.remember_host(model, host)
    return model


def final_model(model: Any, spec: Spec) -> tuple[Any, dict[str, float] | None]:
    """The model to save and serve, and the learned task weights (or None).

    A model trained with learned uncertainty weighting becomes its plain multi-output model,
    compiled with the learned weights (what export and predict expect).
    """
    if not hasattr(model, "task_weights"):
        return model, None
    from kspec.train.compile import compile_model
    from kspec.train.scale import build_optimizer, model_scope

    weights = model.task_weights()
    with model_scope(model.inner):  # the optimizer's variables live in the strategy too
        plain = compile_model(model.inner, spec, loss_weights=weights)
    build_optimizer(plain)  # saved state matches on load
    return plain, weights


# -- callbacks ----------------------------------------------------------------------------------
def _monitor(name: str, path: str, has_validation: bool) -> str:
    if name.startswith("val_") and not has_validation:
        raise SpecError(path, f"monitors {name!r} but the data has no validation split",
                        valid="a training metric such as 'loss', or add data.splits.validation")
    return name


def callbacks(spec: Spec, *, has_validation: bool, run: RunDir | None = None, tag: str = "",
              phase: int = 0, weighted: bool = False, extra: Sequence[Any] = (),
              train_split: Any = None, recorder: Any = None) -> list:
    """The Keras callbacks a spec asks for, in the order they must run.

    Args:
        spec: the validated spec.
        has_validation: whether there is validation data (``val_*`` monitors need it).
        run: the run directory; without one (search trials) nothing is written to disk
            (no CSV history, backup, checkpoint or TensorBoard logs).
        tag: names this model's files in the run (ensemble members: ``member0``).
        phase: the training phase (recorded in the backup).
        weighted: the model learns its task weights (log them every epoch).
        extra: callbacks of the caller (``kspec.fit(callbacks=...)``, KerasTuner's).
        train_split: the training split (``training.diagnostics`` probes its first rows).
        recorder: the run's :class:`kspec.train.backup.Recorder` for this model (default: a
            new one); its callback writes the backup and then history.csv after every epoch,
            after the callbacks whose state it keeps (early stopping, checkpoint, ...) and
            before the caller's.
    """
    import keras

    from kspec.train.backup import Recorder, checkpoint_callback, stateful_callbacks
    from kspec.train.diagnostics import diagnostics_callbacks, tensorboard_callback

    cb = spec.training.callbacks
    out: list = []
    if weighted:
        out.append(_task_weights())  # first, so the CSV and history see its logs
    if cb.early_stopping:
        es = cb.early_stopping
        out.append(keras.callbacks.EarlyStopping(
            monitor=_monitor(es.monitor, "training.callbacks.early_stopping.monitor",
                             has_validation),
            patience=es.patience, min_delta=es.min_delta, mode=es.mode,
            restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch))
    if cb.checkpoint and run is not None:
        ck = cb.checkpoint
        out.append(checkpoint_callback(
            run.checkpoint_file,
            monitor=_monitor(ck.monitor, "training.callbacks.checkpoint.monitor",
                             has_validation),
            save_best_only=ck.save_best_only, mode=ck.mode))
    if cb.reduce_lr_on_plateau:
        rl = cb.reduce_lr_on_plateau
        out.append(keras.callbacks.ReduceLROnPlateau(
            monitor=_monitor(rl.monitor, "training.callbacks.reduce_lr_on_plateau.monitor",
                             has_validation),
            factor=rl.factor, patience=rl.patience, min_lr=rl.min_lr))
    if cb.tensorboard and run is not None:
        out.append(tensorboard_callback(cb.tensorboard, run))
    if run is not None:
        out += diagnostics_callbacks(spec, run, train_split, tag=tag)
    search = spec.search
    if search is not None and search.early_stopping is not None and run is None:
        # The search section's early stopping shapes trials only, not `kspec fit`.
        es = search.early_stopping
        monitor = es.monitor or search.objective.name
        mode = search.objective.direction if es.monitor is None else "auto"
        out.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=es.patience,
                                                 min_delta=es.min_delta, mode=mode))
    if run is not None:
        # One step after the epoch: the backup, then history.csv from the same rows (so
        # they agree), after every callback whose state it keeps.
        if recorder is None:
            recorder = Recorder(run, tag, backup=cb.backup_and_restore)
        out.append(recorder.callback(phase, stateful_callbacks(out)))
    out += list(extra)
    out.append(_NonFiniteGuard())
    return out


def _task_weights():
    import keras

    class TaskWeights(keras.callbacks.Callback):
        """Log the learned weight exp(-s) of each output's loss every epoch."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs.update({f"{k}_weight": v for k, v in self.model.task_weights().items()})

    return TaskWeights()


def _NonFiniteGuard():  # noqa: N802 - builds a Keras callback lazily
    import keras

    class NonFiniteGuard(keras.callbacks.Callback):
        """Stop at a NaN/inf loss and remember the (1-based) epoch it happened in."""

        def __init__(self) -> None:
            super().__init__()
            self.failed_epoch: int | None = None
            self._epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.failed_epoch = self._epoch + 1
                self.model.stop_training = True

    return NonFiniteGuard()


# -- training -----------------------------------------------------------------------------------
def train(model: Any, spec: Spec, data: Any, *, train_split: Any = None,
          run: RunDir | None = None, tag: str = "", extra_callbacks: Sequence[Any] = (),
          epochs: int | None = None, initial_epoch: int = 0, verbose: Any = None,
          prior_history: Sequence[dict[str, Any]] = ()) -> Trained:
    """Train a compiled ``model`` on the data's training split, phase by phase.

    With a run directory, every epoch is backed up (:mod:`kspec.train.backup`) and a run
    that was interrupted continues from its last backed-up epoch, in whatever phase that
    was, with the weights, optimizer state and data order an uninterrupted run would have.

    Args:
        model: from :func:`build_compiled`.
        spec: the validated spec.
        data: the loaded data (its validation split, if any, is evaluated every epoch).
        train_split: train on this split instead of ``data.train`` (bagging).
        run: the run directory to record in (None: nothing written, as in search trials).
        tag: names this model's files in the run (ensemble members).
        extra_callbacks: the caller's Keras callbacks.
        epochs: train this many epochs in one go, ignoring ``training.phases`` (KerasTuner's
            Hyperband sets the epochs of a trial); default: the spec's phases.
        initial_epoch: the epoch to start counting from (with ``epochs``).
        verbose: Keras's verbosity (default ``training.verbose``).
        prior_history: history rows of the epochs before ``initial_epoch`` (a continued
            run), kept at the top of history.csv.

    Raises:
        NonFiniteLoss: the loss became NaN/inf.
    """
    from types import SimpleNamespace

    from kspec.data.pipeline import epoch_variable, to_dataset
    from kspec.train.backup import Recorder
    from kspec.train.compile import compile_model
    from kspec.train.phases import default_phases, run_phases
    from kspec.train.progress import epoch_clock, progress_bar
    from kspec.train.scale import model_scope
    from kspec.train.xla import host_augmentation

    t = spec.training
    split = data.train if train_split is None else train_split
    weights = class_weights(spec, _labels(spec, split))
    # Each epoch's order comes from (seed, epoch), so a resumed run repeats it.
    clock = epoch_variable() if t.shuffle else None
    train_ds = to_dataset(split, t.batch_size, shuffle=t.shuffle, seed=spec.seed,
                          cache=spec.data.cache, epoch=clock,
                          augment=host_augmentation(model))
    val_ds = (to_dataset(data.validation, t.batch_size, cache=spec.data.cache)
              if data.validation is not None else None)
    # Given the number of batches, Keras makes one iterator per epoch (without it, two:
    # the one made at the end of an epoch is thrown away; keras/src/trainers/
    # epoch_iterator.py). Starting an iterator costs ~10 ms of graph set-up per epoch.
    batches = int(train_ds.cardinality())
    steps = t.steps_per_epoch or (batches if batches > 0 else None)
    weighted = hasattr(model, "task_weights")
    shown = t.verbose if verbose is None else verbose
    recorder = (Recorder(run, tag, backup=t.callbacks.backup_and_restore, prior=prior_history)
                if run is not None else None)
    names = [p["name"] for p in default_phases(spec)] if epochs is None else ["train"]
    probe = _probe_split(spec, split)  # the diagnostics' rows, read once for every phase

    def fit_one(index: int, first: int, last: int):
        start, skip = (recorder.restore(model, index, first, last) if recorder is not None
                       else (first, False))
        if skip:  # a later phase was backed up: its weights are loaded there
            return SimpleNamespace(history=recorder.history(first, last))
        cbs = callbacks(spec, has_validation=val_ds is not None, run=run, tag=tag, phase=index,
                        weighted=weighted, extra=extra_callbacks,
                        train_split=probe, recorder=recorder)
        guard = cbs[-1]
        if clock is not None:
            cbs.insert(0, epoch_clock(clock, start))
        if shown != 0:
            cbs.insert(len(cbs) - 1, progress_bar())  # steps never pass the epoch's count
        history = model.fit(
            train_ds, validation_data=val_ds, initial_epoch=start, epochs=last,
            steps_per_epoch=steps, class_weight=weights, callbacks=cbs,
            verbose=shown,
            shuffle=False,  # the dataset is shuffled (seeded) by to_dataset
        )
        if guard.failed_epoch is not None:
            raise NonFiniteLoss(guard.failed_epoch, str(run.path) if run is not None else "")
        if recorder is None:
            return history
        if len(names) > 1:  # a phased run keeps the model at the end of each phase
            from kspec.rundir import save_model_atomic

            save_model_atomic(getattr(model, "inner", model),
                              run.phase_model_file(index, names[index], tag))
        return SimpleNamespace(history=recorder.history(first, last))

    if epochs is not None:
        history = fit_one(0, initial_epoch, epochs)
        hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        ran = len(next(iter(hist.values()), []))
        if recorder is not None:  # the whole record, earlier epochs included
            hist = recorder.history(0, epochs)
        return Trained(model, hist, [{"name": "train", "first_epoch": initial_epoch + 1,
                                      "epochs": ran,
                                      "trainable_weights": len(model.trainable_weights)}])

    def recompile(optimizer: Any, path: str) -> None:
        with model_scope(model):  # the new optimizer lives in the model's strategy
            compile_model(model, spec, optimizer=optimizer, optimizer_path=path)

    hist, phases = run_phases(model, spec, fit_one, recompile)
    return Trained(model, hist, phases)


def _labels(spec: Spec, split: Any) -> Any:
    """The labels class weights read; a streamed split (kspec.data.stream) is read for
    them only when ``class_weight: balanced`` needs the counts."""
    if not getattr(split, "streamed", False):
        return split.y
    return split.labels() if spec.training.class_weight == "balanced" else None


def _probe_split(spec: Spec, split: Any) -> Any:
    """What the diagnostics probe reads its first rows from: the split, or for a streamed
    split those rows read into memory (only when diagnostics are on)."""
    if not getattr(split, "streamed", False):
        return split
    from kspec.train.diagnostics import diagnostics_options

    opts = diagnostics_options(spec)
    if opts is None:
        return None
    return split.head(opts.probe_batches * (opts.batch_size or spec.training.batch_size))


@dataclass
class Ensemble:
    """An ensemble before training: its members and the model that averages them.

    Attributes:
        model: one model whose outputs are the mean of the members' outputs (compiled); it
            shares the members' weights, so training the members trains it.
        members: each member, compiled (the learned-weighting wrapper when the spec asks).
        seeds: each member's seed.
    """

    model: Any
    members: list[Any]
    seeds: list[int]


def member_spec(spec: Spec, seed: int) -> Spec:
    """The spec of one ensemble member: the same spec with its own seed, no ensemble."""
    return spec.model_copy(update={"seed": seed, "ensemble": None})


def build_ensemble(spec: Spec, data: Any) -> Ensemble:
    """Build every member of ``spec.ensemble`` (each with its seed) and their average."""
    from kspec.train.compile import compile_model
    from kspec.train.ensemble import combine, member_seeds
    from kspec.train.scale import build_optimizer, scope

    seeds = member_seeds(spec)
    with scope(spec):  # the members and their average under one policy and strategy
        members = [build_compiled(member_spec(spec, seed), data) for seed in seeds]
        # The averaged model nests each member's plain model (a wrapper's inner model).
        combined = combine([getattr(m, "inner", m) for m in members], name=spec.name)
        compile_model(combined, spec)
        # The combined model is never trained itself; building its optimizer now makes the
        # saved optimizer state match the model's variables, so loading it does not warn.
        build_optimizer(combined)
    return Ensemble(combined, members, seeds)


def train_ensemble(spec: Spec, data: Any, ensemble: Ensemble, *, run: RunDir | None = None,
                   extra_callbacks: Sequence[Any] = (), epochs: int | None = None,
                   verbose: Any = None) -> Trained:
    """Train every member of an ensemble (as :func:`train` does) and evaluate each.

    Each member's history goes to ``history_member{k}.csv``; with ``bootstrap: true`` each
    trains on its own bootstrap sample of the training split. Returns the averaged model,
    the members' mean history, member 0's phases and one record per member.
    """
    from kspec.compiler.model import set_seed
    from kspec.train.ensemble import bootstrap, mean_history

    shown = spec.training.verbose if verbose is None else verbose
    records, histories, phases = [], [], []
    for k, (model, seed) in enumerate(zip(ensemble.members, ensemble.seeds)):
        if shown != 0:
            print(f"ensemble member {k + 1}/{len(ensemble.seeds)} (seed {seed})", flush=True)
        one = member_spec(spec, seed)
        set_seed(seed)  # dropout and augmentation draws repeat per member
        split = bootstrap(data.train, seed) if spec.ensemble.bootstrap else None
        trained = train(model, one, data, train_split=split, run=run, tag=f"member{k}",
                        extra_callbacks=extra_callbacks, epochs=epochs, verbose=verbose)
        record = {"member": k, "seed": seed, "bootstrap": spec.ensemble.bootstrap,
                  "metrics": evaluate(model, one, data, tta=False)}
        if hasattr(model, "task_weights"):
            record["task_weights"] = model.task_weights()
        records.append(record)
        histories.append(trained.history)
        phases = phases or trained.phases
    return Trained(ensemble.model, mean_history(histories), phases, records)


def evaluate(model: Any, spec: Spec, data: Any, *, tta: bool = True) -> dict[str, dict]:
    """Metrics of ``model`` on every split (and TTA metrics when the spec asks for them)."""
    from kspec.data.pipeline import to_dataset

    metrics = {}
    for name, split in data.splits().items():
        ds = to_dataset(split, spec.training.batch_size, cache=False)
        values = model.evaluate(ds, verbose=0, return_dict=True)
        metrics[name] = {k: float(v) for k, v in values.items()}
    if tta and spec.training.tta is not None:
        from kspec.train.tta import evaluate_tta

        t = spec.training.tta
        for name in t.splits:
            split = data.splits().get(name)
            if split is not None:
                metrics[f"{name}_tta"] = evaluate_tta(
                    model, split, spec, scheme=t.scheme, crop_fraction=t.crop_fraction)
    return metrics
