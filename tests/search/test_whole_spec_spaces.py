"""Search trials train through the same loop as `kspec fit`, so spaces in derived targets,
learned loss weighting and ensembles are searched like any other value."""

from __future__ import annotations

import numpy as np
import pytest

import kspec


@pytest.fixture(scope="module")
def two_task_data():
    """240 rows; label 0..3; the 'high' head learns label >= threshold."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, size=240)
    x = rng.normal(size=(240, 4)).astype("float32") + y[:, None].astype("float32")
    return x, y


def _spec(directory) -> dict:
    return {
        "name": "whole_spec_search",
        "seed": 4,
        "data": {"splits": {"validation": 0.25}},
        "model": {
            "inputs": [{"name": "x", "shape": [4]}],
            "blocks": [
                {"name": "trunk", "inputs": "x",
                 "layers": [{"type": "dense", "units": 8, "activation": "relu"}]},
                {"name": "label", "inputs": "trunk",
                 "layers": [{"type": "dense", "units": 4, "activation": "softmax"}]},
                {"name": "high", "inputs": "trunk",
                 "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
            ],
            "outputs": [{"name": "label"}, {"name": "high"}],
        },
        "training": {
            "targets": {"high": {"threshold": {"$choice": [1.5, 2.5]}}},
            "loss_weighting": {"$choice": ["fixed", "uncertainty"]},
            "loss": {"label": "sparse_categorical_crossentropy", "high": "binary_crossentropy"},
            "metrics": {"high": ["accuracy"]},
            "optimizer": {"type": "adam", "learning_rate": 0.02},
            "batch_size": 32, "epochs": 2, "verbose": 0,
        },
        "ensemble": {"$choice": [None, {"members": 2}]},
        "search": {"tuner": "grid", "max_trials": 8, "objective": "val_loss",
                   "directory": str(directory)},
    }


def test_targets_loss_weighting_and_ensembles_are_searched(tmp_path, two_task_data):
    x, y = two_task_data
    result = kspec.tune(_spec(tmp_path / "tuning"), data=(x, y), verbose=0)
    assert len(result.trials) == 8 and all(r.status == "COMPLETED" for r in result.trials)
    seen = {(r.values["training.targets.high.threshold"], r.values["training.loss_weighting"],
             r.values["ensemble"]) for r in result.trials}
    assert len(seen) == 8  # every combination ran as a trial of its own
    assert all(np.isfinite(r.score) for r in result.trials)

    # The best model is a plain two-output model (a learned-weighting wrapper is unwrapped,
    # an ensemble is its averaged model) that predicts both heads.
    import importlib

    import keras

    importlib.import_module("kspec.components")  # registers kspec's Keras classes
    model = keras.saving.load_model(result.best_model_path, safe_mode=True)
    assert sorted(model.output_names) == ["high", "label"]
    best = result.best_spec
    assert best.training.loss_weighting in ("fixed", "uncertainty")
    run = kspec.fit(result.best_spec_path, data=(x, y), out=tmp_path / "runs")
    assert run.spec.training.targets["high"].threshold == best.training.targets["high"].threshold


def test_a_trial_derives_its_own_targets(tmp_path, two_task_data):
    """Two thresholds give two different 'high' targets: the positive rate a trial sees
    depends on its threshold."""
    from kspec.search.hyper import SpecHyperModel
    from kspec.search.run import _load_data
    from kspec.validation import load_search

    plan = load_search(_spec(tmp_path))
    model = SpecHyperModel(plan, _load_data(plan, two_task_data), epochs=1)
    rates = []
    for threshold in (1.5, 2.5):
        spec = plan.validate(plan.resolve(
            lambda s: (0 if s.name != "training.targets.high.threshold" else
                       [1.5, 2.5].index(threshold))))
        rates.append(float(np.mean(model.data_for(spec).train.y["high"])))
    assert rates[0] > rates[1] + 0.1
