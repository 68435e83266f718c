"""Multi-task models: one loss per output, weighted sums, targets derived from one label."""

from __future__ import annotations

import numpy as np
import pytest

import kspec
from kspec.errors import SpecError


def two_head_spec(**training) -> dict:
    spec = {
        "name": "two_heads",
        "seed": 3,
        "data": {"splits": {"validation": 0.2}},
        "model": {
            "inputs": [{"name": "x", "shape": [6]}],
            "blocks": [
                {"name": "trunk", "inputs": "x",
                 "layers": [{"type": "dense", "units": 16, "activation": "relu"}]},
                {"name": "kind", "inputs": "trunk",
                 "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
                {"name": "size", "inputs": "trunk", "layers": [{"type": "dense", "units": 1}]},
            ],
            "outputs": [{"name": "kind"}, {"name": "size"}],
        },
        "training": {
            "optimizer": {"type": "adam", "learning_rate": 0.02},
            "loss": {"kind": "sparse_categorical_crossentropy", "size": "mse"},
            "loss_weights": {"kind": 1.0, "size": 0.5},
            "metrics": {"kind": ["accuracy"], "size": ["mae"]},
            "batch_size": 32, "epochs": 6, "verbose": 0,
        },
    }
    spec["training"].update(training)
    return spec


def _data(n=240):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 6)).astype("float32")
    kind = np.argmax(x[:, :3], axis=1)
    size = (x[:, 3:] @ np.array([1.0, -2.0, 0.5])).astype("float32")
    return x, {"kind": kind, "size": size}


def test_two_heads_train_and_both_losses_fall(tmp_path):
    run = kspec.fit(two_head_spec(), data=_data(), out=tmp_path)
    h = run.history
    for key in ("kind_loss", "size_loss", "val_kind_loss", "val_size_loss",
                "kind_accuracy", "size_mean_absolute_error"):
        assert key in h, sorted(h)
    assert h["kind_loss"][-1] < 0.7 * h["kind_loss"][0]
    assert h["size_loss"][-1] < 0.7 * h["size_loss"][0]
    # the total is the weighted sum of the per-output losses
    m = run.metrics["train"]
    assert m["loss"] == pytest.approx(m["kind_loss"] + 0.5 * m["size_loss"], rel=1e-3)
    summary = run.summary()
    assert "kind_accuracy" in summary and "size_loss" in summary
    header = (run.run_dir / "history.csv").read_text().splitlines()[0]
    assert "val_size_loss" in header


def test_targets_are_derived_per_output_from_one_label(tmp_path):
    x, y = _data()
    spec = two_head_spec(
        targets={"kind": {"label_map": [0, 1, 1, 2]}, "size": {"threshold": 2.5}},
        loss={"kind": "sparse_categorical_crossentropy", "size": "binary_crossentropy"},
        metrics={"size": ["accuracy"]}, epochs=1)
    spec["model"]["blocks"][2]["layers"][0]["activation"] = "sigmoid"
    label = np.array([0, 1, 2, 3] * 60)
    spec_obj, data, model = kspec.train.fit.prepare(spec, (x, label))
    assert sorted(data.train.y) == ["kind", "size"]
    np.testing.assert_array_equal(np.unique(data.train.y["kind"]), [0, 1, 2])
    assert data.train.y["kind"].dtype.kind == "i"
    # label 3 maps to kind 2 and is the only label above the threshold 2.5 -> size 1
    np.testing.assert_array_equal(data.train.y["kind"] == 2, data.train.y["size"] == 1.0)
    assert model.output_names == ["kind", "size"]


def test_a_label_missing_from_the_label_map_is_a_spec_error():
    x, _ = _data()
    spec = two_head_spec(targets={"kind": {"label_map": [0, 1]}})
    with pytest.raises(SpecError, match=r"training\.targets\.kind\.label_map: label 2 .* has "
                       r"no entry in a label_map of length 2"):
        kspec.train.fit.prepare(spec, (x, np.arange(240) % 3))


def test_targets_for_unknown_outputs_are_refused():
    spec = two_head_spec(targets={"knd": {"threshold": 0}})
    with pytest.raises(SpecError, match=r"training\.targets\.knd: the model has no output"):
        kspec.train.fit.prepare(spec, _data())


def test_a_missing_loss_for_an_output_is_named():
    spec = two_head_spec(loss={"kind": "sparse_categorical_crossentropy"})
    with pytest.raises(SpecError, match=r"training\.loss: no loss for output\(s\) \['size'\]"):
        kspec.train.fit.prepare(spec, _data())


def test_learned_uncertainty_weighting_trains_both_heads(tmp_path):
    spec = two_head_spec(loss_weighting="uncertainty", loss_weights=None, epochs=5)
    run = kspec.fit(spec, data=_data(), out=tmp_path)
    h = run.history
    assert h["kind_loss"][-1] < 0.7 * h["kind_loss"][0]
    assert h["size_loss"][-1] < 0.7 * h["size_loss"][0]
    # the weights are learned, logged per epoch and recorded with the run
    assert len(h["kind_weight"]) == 5 and h["kind_weight"][-1] != h["kind_weight"][0]
    assert set(run.task_weights) == {"kind", "size"}
    assert run.task_weights["size"] == pytest.approx(h["size_weight"][-1], rel=1e-5)
    assert "learned uncertainty weighting" in run.summary()
    import json

    import keras

    meta = json.loads((run.run_dir / "meta.json").read_text())
    assert meta["task_weights"] == pytest.approx(run.task_weights)
    # the saved model is the plain two-output model, ready for export
    loaded = keras.saving.load_model(run.run_dir / "model.keras", safe_mode=True)
    assert loaded.output_names == ["kind", "size"]


def test_an_ensemble_of_uncertainty_weighted_members(tmp_path):
    """Each member learns its own task weights (recorded per member); the saved model
    averages the members' plain two-output models."""
    import keras

    spec = two_head_spec(loss_weighting="uncertainty", loss_weights=None, epochs=2)
    spec["ensemble"] = {"members": 2}
    run = kspec.fit(spec, data=_data(), out=tmp_path)
    assert [set(m["task_weights"]) for m in run.members] == [{"kind", "size"}] * 2
    assert run.members[0]["task_weights"] != run.members[1]["task_weights"]
    loaded = keras.saving.load_model(run.run_dir / "model.keras", safe_mode=True)
    assert loaded.output_names == ["kind", "size"]
    assert {layer.name for layer in loaded.layers} >= {"member_0", "member_1"}


def test_uncertainty_weighting_needs_several_outputs_and_no_fixed_weights(tiny_spec,
                                                                         tiny_classification):
    with pytest.raises(SpecError, match=r"training\.loss_weights: fixed loss_weights cannot "
                       "be combined with loss_weighting: uncertainty"):
        kspec.train.fit.prepare(two_head_spec(loss_weighting="uncertainty"), _data())
    tiny_spec["training"]["loss_weighting"] = "uncertainty"
    with pytest.raises(SpecError, match=r"training\.loss_weighting: uncertainty weighting "
                       "balances the losses of several outputs"):
        kspec.train.fit.prepare(tiny_spec, tiny_classification)
