"""Search spaces as KerasTuner hyperparameters; the HyperModel and Tuner that run kspec trials.

Each trial resolves the spec for the trial's values, validates it, and builds and trains it
through the one training loop (:mod:`kspec.train.loop`), as ``kspec fit`` does; the data are
loaded once per search.
"""

from __future__ import annotations

import json
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


class SpecHyperModel(kt.HyperModel):
    """Builds and trains the spec a trial's hyperparameters select, through the one training
    loop (:mod:`kspec.train.loop`), exactly as ``kspec fit`` would.

    Args:
        plan: the spec with its spaces (:func:`kspec.validation.load_search`).
        data: the loaded splits (``kspec.data.split.Data``) with labels as read; each trial
            derives its outputs' targets (``training.targets``) from them.
        epochs: epochs per trial (Hyperband passes its own).
        callbacks: extra Keras callbacks for every trial.
    """

    def __init__(self, plan: SearchPlan, data: Any, epochs: int, callbacks: list | None = None):
        super().__init__(name=plan.default.name)
        self.plan, self.raw_data, self.epochs = plan, data, epochs
        self.callbacks = list(callbacks or [])
        self.execution = 0
        self._spec: tuple[str, Any] | None = None
        self._data: tuple[str, Any] | None = None
        self._ensemble: tuple[int, Any] | None = None

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

    def data_for(self, spec: Any) -> Any:
        """The splits with the targets this trial's spec derives (cached per targets)."""
        from kspec.train.targets import apply_targets

        key = json.dumps({k: v.model_dump() for k, v in spec.training.targets.items()},
                         sort_keys=True)
        if self._data is None or self._data[0] != key:
            self._data = (key, apply_targets(spec, self.raw_data))
        return self._data[1]

    def build(self, hp: kt.HyperParameters):
        from kspec.train import loop

        spec = self.resolve(hp)
        data = self.data_for(spec)
        # Execution 0 is seeded exactly like `kspec fit`, so the best resolved spec trains
        # to the same result; further executions of a trial get their own seeds.
        seed = spec.seed + self.execution
        self.execution += 1
        if spec.ensemble is not None:
            ensemble = loop.build_ensemble(spec.model_copy(update={"seed": seed}), data)
            self._ensemble = (id(ensemble.model), ensemble)
            return ensemble.model
        return loop.build_compiled(spec, data, seed=seed)

    def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
        from kspec.train import loop

        spec = self.resolve(hp)
        data = self.data_for(spec)
        if epochs is None and not spec.training.phases:
            epochs = self.epochs  # search.epochs (default: training.epochs)
        extra = list(callbacks or []) + self.callbacks
        try:
            if spec.ensemble is not None:
                result = self._fit_ensemble(spec, data, model, extra, epochs)
            else:
                trained = loop.train(model, spec, data, extra_callbacks=extra, epochs=epochs,
                                     initial_epoch=initial_epoch, verbose=0)
                # A fresh History holds only the numbers: nothing keeps the model alive
                # (memory growth across trials: keras-team/keras-tuner#395, #873, #1031).
                result = keras.callbacks.History()
                result.history = trained.history
        except loop.NonFiniteLoss as e:
            raise kt.errors.FailedTrialError(
                f"the loss became NaN/inf in epoch {e.epoch}") from None
        logged = result.history if isinstance(result, keras.callbacks.History) else result
        objective = self.plan.search.objective.name
        if objective not in logged:
            raise ObjectiveMissing(SpecError(
                "search.objective", f"the model does not log {objective!r}",
                valid=sorted(logged), hint=None))
        return result

    def _fit_ensemble(self, spec, data, model, callbacks: list, epochs: int | None) -> dict:
        """Train the members, then score the averaged model: its final metrics are the
        trial's result, and its weights are the trial's checkpoint."""
        from kspec.data.pipeline import to_dataset
        from kspec.train import loop

        if self._ensemble is None or self._ensemble[0] != id(model):
            raise kt.errors.FatalError("internal: the ensemble trained is not the one built")
        ensemble = self._ensemble[1]
        self._ensemble = None
        # KerasTuner's own callbacks (its best-epoch checkpoint) watch the averaged model,
        # not each member's epochs.
        tuner_cbs = [c for c in callbacks if type(c).__module__.startswith("keras_tuner")]
        member_cbs = [c for c in callbacks if c not in tuner_cbs]
        loop.train_ensemble(spec, data, ensemble, extra_callbacks=member_cbs, epochs=epochs,
                            verbose=0)
        batch = spec.training.batch_size
        logs = {k: float(v) for k, v in model.evaluate(
            to_dataset(data.train, batch), verbose=0, return_dict=True).items()}
        if data.validation is not None:
            logs.update({f"val_{k}": float(v) for k, v in model.evaluate(
                to_dataset(data.validation, batch), verbose=0, return_dict=True).items()})
        for cb in tuner_cbs:  # e.g. SaveBestEpoch writes the averaged model's weights
            cb.set_model(model)
            cb.on_epoch_end(0, logs)
        return logs


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
    from kspec.rundir import write_json

    write_json(trial_dir / RECORD, record)


_CLASSES: dict[type, type] = {}


def make_tuner(plan: SearchPlan, hypermodel: SpecHyperModel, directory: Path, project: str, *,
               overwrite: bool = False):
    """The KerasTuner tuner the ``search:`` section asks for, running kspec trials."""
    from kspec.registry import TUNERS

    search = plan.search
    base, extra = TUNERS.get(search.tuner.type, "search.tuner.type").implementation()(
        search.tuner, search, hypermodel.epochs)
    if base not in _CLASSES:
        _CLASSES[base] = type(f"Kspec{base.__name__}", (_KspecTuner, base), {})
    seed = search.seed if search.seed is not None else plan.default.seed
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(search.objective.name, search.objective.direction),
        seed=seed or 1,  # KerasTuner draws a random seed for 0
        max_consecutive_failed_trials=search.max_consecutive_failures,
        directory=str(directory), project_name=project, overwrite=overwrite,
        executions_per_trial=search.executions_per_trial,
    )
    return _CLASSES[base](**common, **extra)
