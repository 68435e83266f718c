"""Search spaces as KerasTuner hyperparameters; the HyperModel and Tuner that run kspec trials.

Each trial resolves the spec for the trial's values, validates it, and builds it through the
ordinary path (``build_model`` + ``compile_model``); the data are loaded once per search.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from kspec.errors import DataError, SpecError
from kspec.spec.spaces import Space
from kspec.validation.spaces import SearchPlan

RECORD = "kspec_trial.json"


# -- spaces -> hyperparameters -----------------------------------------------------------------
def hp_chooser(hp: kt.HyperParameters):
    """A chooser and scope for :func:`kspec.spec.spaces.resolve` that declare every space
    in ``hp`` (inactive branches included, in their conditional scopes) and read its value."""

    def choose(space: Space) -> Any:
        b = space.body
        if space.kind == "choice":
            values = space.labels()
            value = hp.Choice(space.name, values, default=values[space.default])
            return None if value is None else values.index(value)
        if space.kind == "bool":
            return hp.Boolean(space.name, default=b.default)
        make = hp.Int if space.kind == "int" else hp.Float
        return make(space.name, min_value=b.min, max_value=b.max, step=b.step,
                    sampling=b.sampling, default=space.default)

    def scope(space: Space, index: int):
        return hp.conditional_scope(space.name, [space.labels()[index]])

    return choose, scope


def active_values(plan: SearchPlan, hp: kt.HyperParameters) -> dict[str, Any]:
    """The values of the spaces that were active in a trial, by hyperparameter name."""
    out = {}
    for space in plan.spaces:
        if space.name in hp.values and hp.is_active(space.name):
            out[space.name] = hp.values[space.name]
    return out


# -- trials -------------------------------------------------------------------------------------
class ObjectiveMissing(kt.errors.FatalError):
    """The objective is not among the metrics the model logs: no trial can succeed."""

    def __init__(self, error: SpecError) -> None:
        self.spec_error = error
        super().__init__(str(error))


class _StopOnNonFinite(keras.callbacks.Callback):
    """Stop at a NaN/inf loss and remember the epoch, so the trial fails with that reason."""

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


class SpecHyperModel(kt.HyperModel):
    """Builds and trains the spec a trial's hyperparameters select.

    Args:
        plan: the spec with its spaces (:func:`kspec.validation.spaces.load_search`).
        data: the loaded splits (``kspec.data.sources.Data``), shared by all trials.
        epochs: epochs per trial (Hyperband passes its own).
        callbacks: extra Keras callbacks for every trial.
    """

    def __init__(self, plan: SearchPlan, data: Any, epochs: int, callbacks: list | None = None):
        super().__init__(name=plan.default.name)
        self.plan, self.data, self.epochs = plan, data, epochs
        self.callbacks = list(callbacks or [])
        self.execution = 0
        self._spec: tuple[str, Any] | None = None

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        choose, scope = hp_chooser(hp)
        self.plan.resolve(choose, scope)

    def resolve(self, hp: kt.HyperParameters):
        """The validated Spec for ``hp`` (SpecErrors when this combination is invalid)."""
        key = json.dumps(hp.values, sort_keys=True, default=str)
        if self._spec is None or self._spec[0] != key:
            choose, scope = hp_chooser(hp)
            self._spec = (key, self.plan.validate(self.plan.resolve(choose, scope)))
        return self._spec[1]

    def build(self, hp: kt.HyperParameters):
        from kspec.compiler.model import build_model, set_seed
        from kspec.data.preprocess import input_layers
        from kspec.train.compile import compile_model

        spec = self.resolve(hp)
        # Execution 0 is seeded exactly like `kspec fit`, so the best resolved spec trains
        # to the same result; further executions of a trial get their own seeds.
        first = self.execution == 0
        if not first:
            set_seed(spec.seed + self.execution)
        self.execution += 1
        model = build_model(spec, self.data.input_shapes(), input_layers(spec, self.data),
                            seed=first)
        compile_model(model, spec)
        return model

    def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
        from kspec.data.pipeline import to_dataset
        from kspec.train.fit import class_weights

        spec = self.resolve(hp)
        t = spec.training
        train = to_dataset(self.data.train, t.batch_size, shuffle=t.shuffle, seed=spec.seed,
                           cache=spec.data.cache)
        val = (to_dataset(self.data.validation, t.batch_size, cache=spec.data.cache)
               if self.data.validation is not None else None)
        guard = _StopOnNonFinite()
        cbs = list(callbacks or []) + _spec_callbacks(spec) + self.callbacks + [guard]
        common = dict(validation_data=val, steps_per_epoch=t.steps_per_epoch,
                      class_weight=class_weights(spec, self.data.train.y), callbacks=cbs,
                      verbose=0, shuffle=False)
        if t.phases and epochs is None:
            history = self._fit_phases(model, spec, train, common)
        else:
            history = model.fit(train, epochs=epochs or self.epochs,
                                initial_epoch=initial_epoch, **common)
        # The History keeps the model alive; KerasTuner only needs the numbers
        # (memory growth across trials: keras-team/keras-tuner#395, #873, #1031).
        history.set_model(None)
        if guard.failed_epoch is not None:
            raise kt.errors.FailedTrialError(
                f"the loss became NaN/inf in epoch {guard.failed_epoch}")
        objective = self.plan.search.objective.name
        if objective not in history.history:
            raise ObjectiveMissing(SpecError(
                "search.objective", f"the model does not log {objective!r}",
                valid=sorted(history.history), hint=None))
        return history


    @staticmethod
    def _fit_phases(model, spec, train, common):
        """Train phase by phase like ``kspec fit`` (transfer learning: frozen base first)."""
        from kspec.train.compile import compile_model
        from kspec.train.phases import run_phases

        def fit_one(index, initial_epoch, epochs):
            return model.fit(train, initial_epoch=initial_epoch, epochs=epochs, **common)

        def recompile(optimizer, path):
            compile_model(model, spec, optimizer=optimizer, optimizer_path=path)

        joined, _ = run_phases(model, spec, fit_one, recompile)
        history = keras.callbacks.History()
        history.history = joined
        return history


def _spec_callbacks(spec) -> list:
    """Callbacks of the spec and the search that shape training inside a trial."""
    out = []
    cb = spec.training.callbacks
    if cb.early_stopping:
        es = cb.early_stopping
        out.append(keras.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta, mode=es.mode,
            restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch))
    if cb.reduce_lr_on_plateau:
        rl = cb.reduce_lr_on_plateau
        out.append(keras.callbacks.ReduceLROnPlateau(monitor=rl.monitor, factor=rl.factor,
                                                     patience=rl.patience, min_lr=rl.min_lr))
    search = spec.search
    if search is not None and search.early_stopping is not None:
        es = search.early_stopping
        monitor = es.monitor or search.objective.name
        mode = search.objective.direction if es.monitor is None else "auto"
        out.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=es.patience,
                                                 min_delta=es.min_delta, mode=mode))
    return out


def _reason(error: BaseException) -> str:
    if isinstance(error, (SpecError, DataError, kt.errors.FailedTrialError)):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


class _KspecTuner:
    """Mixed into each KerasTuner tuner class: trial records, clean failure reasons, and a
    search space declared without building models."""

    hypermodel: SpecHyperModel

    def _populate_initial_space(self):
        # KerasTuner builds the model repeatedly to discover conditional hyperparameters;
        # kspec declares every branch directly, so no model is built before the first trial.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def _try_build(self, hp):
        # One session clear per build: KerasTuner's own `_try_build` runs gc.collect() and
        # then clear_session(), which collects again (0.2-0.3 s each with TensorFlow loaded).
        # Clearing between trials is what keeps memory flat (keras-tuner#395, #873, #1031).
        keras.backend.clear_session(free_memory=True)
        return self._build_hypermodel(hp)

    def run_trial(self, trial, *args, **kwargs):
        self.hypermodel.execution = 0
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        hp = trial.hyperparameters
        record = {"trial_id": trial.trial_id, "tuner_id": self.tuner_id,
                  "values": active_values(self.hypermodel.plan, hp),
                  "epochs": hp.values.get("tuner/epochs", self.hypermodel.epochs)}
        start = time.perf_counter()
        try:
            spec = self.hypermodel.resolve(hp)
            if spec.training.phases and "tuner/epochs" not in hp.values:
                record["epochs"] = None  # the phases set their own epochs
            from kspec.spec import to_yaml

            (trial_dir / "spec.yaml").write_text(to_yaml(spec), encoding="utf-8")
            with warnings.catch_warnings():
                # Hyperband continues a trial from another's checkpoint, which holds that
                # trial's optimizer state; the new model's optimizer starts fresh on purpose.
                warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
                result = super().run_trial(trial, *args, **kwargs)
        except kt.errors.FatalError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of one trial is recorded
            record.update(status="FAILED", reason=_reason(e),
                          seconds=round(time.perf_counter() - start, 3))
            _write_record(trial_dir, record)
            raise kt.errors.FailedTrialError(record["reason"]) from None
        histories = result if isinstance(result, list) else [result]
        ran = [len(next(iter(h.history.values()), [])) for h in histories if hasattr(h, "history")]
        record.update(status="COMPLETED", reason="", seconds=round(time.perf_counter() - start, 3),
                      epochs_run=max(ran) if ran else None)
        _write_record(trial_dir, record)
        return result

    def on_trial_end(self, trial):
        path = Path(self.get_trial_dir(trial.trial_id)) / RECORD
        if trial.status == "FAILED" and path.is_file():
            # KerasTuner stores a traceback; keep the reason a user can act on.
            trial.message = json.loads(path.read_text())["reason"]
        super().on_trial_end(trial)


def _write_record(trial_dir: Path, record: dict) -> None:
    from kspec.train.rundir import write_json

    write_json(trial_dir / RECORD, record)


_BASES = {"random": kt.RandomSearch, "grid": kt.GridSearch,
          "bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband}
_CLASSES: dict[str, type] = {}


def make_tuner(plan: SearchPlan, hypermodel: SpecHyperModel, directory: Path, project: str, *,
               overwrite: bool = False):
    """The KerasTuner tuner the ``search:`` section asks for, running kspec trials."""
    search = plan.search
    kind = search.tuner
    if kind not in _CLASSES:
        base = _BASES[kind]
        _CLASSES[kind] = type(f"Kspec{base.__name__}", (_KspecTuner, base), {})
    seed = search.seed if search.seed is not None else plan.default.seed
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(search.objective.name, search.objective.direction),
        seed=seed or 1,  # KerasTuner draws a random seed for 0
        max_consecutive_failed_trials=search.max_consecutive_failures,
        directory=str(directory), project_name=project, overwrite=overwrite,
        executions_per_trial=search.executions_per_trial,
    )
    if kind == "hyperband":
        extra = dict(max_epochs=hypermodel.epochs, factor=search.hyperband.factor,
                     hyperband_iterations=search.hyperband.iterations)
    elif kind == "bayesian":
        extra = dict(max_trials=search.max_trials, alpha=search.bayesian.alpha,
                     beta=search.bayesian.beta,
                     num_initial_points=search.bayesian.initial_points)
    else:
        extra = dict(max_trials=search.max_trials)
    return _CLASSES[kind](**common, **extra)
