"""Each tuner finds the clearly better configuration; results are written and fit again."""

from __future__ import annotations

import csv
import json
import warnings

import pytest

import kspec
from kspec import registry
from kspec.errors import SpecError

registry.load_builtins()
# Every registered tuner, with its documented example options; 3 trials at most (random and
# grid stop after 2: the space is exhausted), 2 epochs (Hyperband's most per model).
TUNERS = {e.name: {"tuner": e.config.example, "max_trials": 3, "epochs": 2}
          for e in registry.TUNERS.entries()}


def _finds_the_good_learning_rate(result):
    tried = {r.values["training.optimizer.learning_rate"] for r in result.trials}
    assert tried == {1e-5, 0.05}, "both options must have been tried"
    assert result.best.values["training.optimizer.learning_rate"] == 0.05
    bad = [r.score for r in result.trials if r.values["training.optimizer.learning_rate"] == 1e-5]
    assert result.best.score < min(bad) - 0.02
    assert result.best_spec.training.optimizer == {"type": "adam", "learning_rate": 0.05}
    assert result.best_spec.search is None
    for name in ("trials.csv", "objective.png", "best_model.keras", "best_spec.yaml"):
        assert (result.project_dir / name).stat().st_size > 0, name


@pytest.mark.parametrize("kind", list(TUNERS))
def test_each_tuner_finds_the_good_learning_rate(kind, make_spec, separable):
    result = kspec.tune(make_spec(**TUNERS[kind]), data=separable, verbose=0)
    _finds_the_good_learning_rate(result)


def test_grid_search_results_table_and_best_spec_fit_again(make_spec, separable, tmp_path):
    result = kspec.tune(make_spec(tuner="grid", max_trials=4), data=separable, verbose=0)
    _finds_the_good_learning_rate(result)
    with open(result.project_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["rank"] for r in rows] == ["1", "2"]
    assert float(rows[0]["val_loss"]) < float(rows[1]["val_loss"])  # best first
    assert rows[0]["training.optimizer.learning_rate"] == "0.05"
    assert "val_loss" in result.summary() and "best spec" in result.summary()

    # The best resolved spec is an ordinary spec: it validates and trains to the same result.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no search-space notice: no spaces left
        spec = kspec.load_spec(result.best_spec_path)
    assert spec.training.epochs == 2
    run = kspec.fit(result.best_spec_path, data=separable, out=tmp_path / "runs")
    assert min(run.history["val_loss"]) == pytest.approx(result.best.score, abs=2e-3)

    import keras

    model = keras.saving.load_model(result.best_model_path, safe_mode=True)
    x, _ = separable
    assert model.predict(x[:5], verbose=0).shape == (5, 1)


def test_conditional_space_never_samples_an_inactive_branch(tmp_path, separable):
    spec = {
        "name": "cond", "seed": 5, "data": {"splits": {"validation": 0.25}},
        "model": {"inputs": [{"name": "x", "shape": [4]}],
                  "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"loss": "binary_crossentropy", "epochs": 1, "verbose": 0,
                     "optimizer": {"$choice": [
                         {"type": "adam",
                          "learning_rate": {"$float": {"min": 1e-3, "max": 1e-1,
                                                       "sampling": "log"}}},
                         {"type": "sgd", "learning_rate": 0.05,
                          "momentum": {"$float": {"min": 0.5, "max": 0.9}}},
                     ]}},
        "search": {"tuner": "random", "max_trials": 4, "directory": str(tmp_path)},
    }
    result = kspec.tune(spec, data=separable, verbose=0)
    adam_lr = "training.optimizer.$choice[0].learning_rate"
    sgd_m = "training.optimizer.$choice[1].momentum"
    kinds = set()
    for record in result.trials:
        kind = record.values["training.optimizer"]
        kinds.add(kind)
        trial = json.loads((result.project_dir / f"trial_{record.trial_id}" /
                            "trial.json").read_text())
        sampled = trial["hyperparameters"]["values"]
        written = kspec.load_spec(result.project_dir / f"trial_{record.trial_id}" / "spec.yaml")
        opt = written.training.optimizer
        if kind == "adam":
            assert sgd_m not in sampled and sgd_m not in record.values
            assert set(opt) == {"type", "learning_rate"}
            assert opt["learning_rate"] == pytest.approx(sampled[adam_lr])
        else:
            assert adam_lr not in sampled and adam_lr not in record.values
            assert opt["momentum"] == pytest.approx(sampled[sgd_m])
            assert opt["learning_rate"] == 0.05
    assert kinds == {"adam", "sgd"}


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0])).astype("float32")
    spec = {
        "name": "failing", "data": {"splits": {"validation": 0.25}},
        "model": {"inputs": [{"name": "x", "shape": [4]}],
                  "layers": [{"type": "reshape", "target_shape": {"$choice": [[2, 2], [3, 3]]}},
                             {"type": "flatten"}, {"type": "dense", "units": 1}]},
        "training": {"loss": "mse", "epochs": 1, "verbose": 0,
                     "optimizer": {"type": "sgd", "learning_rate": {"$choice": [0.01, 1e12]}}},
        "search": {"tuner": "grid", "max_trials": 4, "directory": str(tmp_path)},
    }
    result = kspec.tune(spec, data=(x, y), verbose=0)
    by_status = {}
    for r in result.trials:
        by_status.setdefault(r.status, []).append(r)
    assert len(result.trials) == 4
    assert len(by_status["COMPLETED"]) == 1
    assert len(by_status["FAILED"]) == 3
    reasons = " | ".join(r.reason for r in by_status["FAILED"])
    assert "NaN" in reasons
    assert "model.layers[0]" in reasons  # the impossible reshape, with its spec path
    assert result.best.values == {"model.layers[0].target_shape": "option0",
                                  "training.optimizer.learning_rate": 0.01}
    rows = list(csv.DictReader(open(result.project_dir / "trials.csv")))
    assert sum(bool(r["reason"]) for r in rows) == 3


def test_an_objective_the_model_does_not_log_is_a_spec_error(make_spec, separable):
    spec = make_spec(objective={"name": "val_auc", "direction": "max"}, max_trials=2)
    with pytest.raises(SpecError, match=r"search.objective: the model does not log 'val_auc'.*"
                       r"val_accuracy"):
        kspec.tune(spec, data=separable, verbose=0)


def test_a_validation_objective_needs_a_validation_split(make_spec, separable):
    spec = make_spec()
    spec["data"]["splits"]["validation"] = 0.0
    with pytest.raises(SpecError, match="search.objective.*needs a validation split"):
        kspec.tune(spec, data=separable, verbose=0)


def test_too_many_failures_in_a_row_stop_the_search_with_the_last_reason(tmp_path):
    import numpy as np

    from kspec.search.distributed import TuneError

    x = np.random.default_rng(0).normal(size=(80, 4)).astype("float32")
    spec = {
        "name": "hopeless", "data": {"splits": {"validation": 0.25}},
        "model": {"inputs": [{"name": "x", "shape": [4]}],
                  "layers": [{"type": "reshape", "target_shape": {"$choice": [[3, 3], [5, 5],
                                                                              [7, 7]]}},
                             {"type": "flatten"}, {"type": "dense", "units": 1}]},
        "training": {"loss": "mse", "epochs": 1, "verbose": 0},
        "search": {"tuner": "grid", "max_trials": 3, "max_consecutive_failures": 2,
                   "directory": str(tmp_path)},
    }
    with pytest.raises(TuneError, match=r"2 trials in a row failed.*model.layers\[0\]"):
        kspec.tune(spec, data=(x, x[:, 0]), verbose=0)
    rows = list(csv.DictReader(open(tmp_path / "hopeless" / "trials.csv")))
    assert [r["status"] for r in rows] == ["FAILED", "FAILED"]
    assert not (tmp_path / "hopeless" / "best_spec.yaml").exists()


def test_training_phases_run_inside_trials(make_spec, separable):
    import json

    spec = make_spec(tuner="random", max_trials=1)
    spec["training"]["optimizer"] = {"type": "adam", "learning_rate": 0.01}
    spec["training"]["epochs"] = 1
    spec["training"]["phases"] = [
        {"name": "warm", "trainable": "all"},
        {"name": "tune", "trainable": "all",
         "optimizer": {"type": "sgd", "learning_rate": {"$choice": [0.001, 0.1]}}},
    ]
    result = kspec.tune(spec, data=separable, verbose=0)
    assert [r.status for r in result.trials] == ["COMPLETED"]
    for r in result.trials:
        record = json.loads((result.project_dir / f"trial_{r.trial_id}" /
                             "kspec_trial.json").read_text())
        assert record["epochs_run"] == 2  # one epoch per phase
    assert result.best_spec.training.phases[1].optimizer["type"] == "sgd"
    assert result.best_spec.training.epochs == 1  # the phases' own epochs are kept
