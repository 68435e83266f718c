"""Ensembles (bagging) averaged into one model, and test-time augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kspec
from kspec.train.ensemble import bootstrap
from kspec.train.tta import views


def test_an_ensemble_of_three_beats_its_average_member(tmp_path, tiny_spec):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, size=300)
    x = (rng.normal(size=(300, 4)) * 2.0 + y[:, None]).astype("float32")  # overlapping classes
    tiny_spec["ensemble"] = {"members": 3, "bootstrap": True}
    tiny_spec["training"]["epochs"] = 3
    run = kspec.fit(tiny_spec, data=(x, y), out=tmp_path)
    assert [m["seed"] for m in run.members] == [1, 2, 3]
    for split in ("validation", "test"):
        member_loss = np.mean([m["metrics"][split]["loss"] for m in run.members])
        member_acc = np.mean([m["metrics"][split]["accuracy"] for m in run.members])
        assert run.metrics[split]["loss"] <= member_loss + 1e-6
        assert run.metrics[split]["accuracy"] >= member_acc - 0.02
    # one model: its prediction is the mean of the members' predictions
    members = [run.model.get_layer(f"member_{k}") for k in range(3)]
    batch = x[:8]
    mean = np.mean([np.asarray(m(batch)) for m in members], axis=0)
    np.testing.assert_allclose(run.model.predict(batch, verbose=0), mean, atol=1e-6)
    import keras

    loaded = keras.saving.load_model(run.run_dir / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), mean, atol=1e-6)
    saved = json.loads((run.run_dir / "members.json").read_text())
    assert len(saved) == 3 and "test" in saved[0]["metrics"]
    assert "member mean" in run.summary() and "ensemble" in run.summary()
    assert all((run.run_dir / f"history_member{k}.csv").is_file() for k in range(3))


def test_bootstrap_samples_with_replacement(tiny_classification):
    from kspec.data.loading import Split

    x, y = tiny_classification
    split = Split({"features": x}, y)
    a, b = bootstrap(split, 1), bootstrap(split, 2)
    assert len(a) == len(split)
    rows = {tuple(r) for r in a.x["features"]}
    assert len(rows) < len(split)  # duplicates: drawn with replacement
    assert not np.array_equal(a.x["features"], b.x["features"])


def test_ten_crop_views_are_corners_centre_and_their_mirrors():
    image = np.arange(2 * 4 * 4, dtype="float32").reshape(2, 4, 4, 1)
    big = np.arange(2 * 6 * 6, dtype="float32").reshape(2, 6, 6, 1)
    v = views(big, "ten_crop", size=(4, 4))  # data larger than the model: crops of 4x4
    assert len(v) == 10 and all(a.shape == (2, 4, 4, 1) for a in v)
    np.testing.assert_array_equal(v[0], big[:, :4, :4])       # top-left
    np.testing.assert_array_equal(v[3], big[:, 2:, 2:])       # bottom-right
    np.testing.assert_array_equal(v[4], big[:, 1:5, 1:5])     # centre
    np.testing.assert_array_equal(v[5], big[:, :4, :4][:, :, ::-1])  # mirrored top-left
    flips = views(image, "flip")
    np.testing.assert_array_equal(flips[1][:, :, 0], image[:, :, 3])
    resized = views(image, "five_crop", crop_fraction=0.5)
    assert len(resized) == 5 and resized[0].shape == image.shape


def test_predict_and_evaluate_with_tta(tmp_path):
    import keras

    from kspec.train.tta import evaluate_tta, predict_tta

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 1)).astype("float32")
    y = (x[:, :, :3].mean(axis=(1, 2, 3)) > x[:, :, 3:].mean(axis=(1, 2, 3))).astype("int64")
    spec = {"name": "tta", "model": {
        "inputs": [{"name": "image", "shape": [6, 6, 1]}],
        "layers": [{"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]},
        "training": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "epochs": 1, "verbose": 0, "tta": {"scheme": "flip"}}}
    run = kspec.fit(spec, data={"train": (x, y), "test": (x, y)}, out=tmp_path)
    model = run.model
    manual = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(predict_tta(model, x, "flip"), manual, atol=1e-6)
    # the label is "left half brighter": mirroring flips it, so flip-TTA must not match
    # the plain prediction, and its score is computed on the averaged probabilities
    loss = keras.losses.sparse_categorical_crossentropy(y, manual)
    assert run.metrics["test_tta"]["loss"] == pytest.approx(float(np.mean(loss)), rel=1e-4)
    assert run.metrics["test_tta"]["loss"] != pytest.approx(run.metrics["test"]["loss"])
    again = evaluate_tta(model, run.data.test, run.spec, scheme="flip")
    assert again["accuracy"] == pytest.approx(run.metrics["test_tta"]["accuracy"])
    assert "test_tta" in run.summary()


def test_combining_multi_output_models_averages_each_output():
    spec = {"name": "mo", "seed": 0, "model": {
        "inputs": [{"name": "x", "shape": [3]}],
        "blocks": [{"name": "a", "inputs": "x", "layers": [{"type": "dense", "units": 2}]},
                   {"name": "b", "inputs": "x", "layers": [{"type": "dense", "units": 1}]}],
        "outputs": [{"name": "a"}, {"name": "b"}]}, "training": {"loss": "mse"}}
    first = kspec.build(kspec.load_spec(spec))
    spec["seed"] = 1
    second = kspec.build(kspec.load_spec(spec))
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    expected = [(np.asarray(p) + np.asarray(q)) / 2 for p, q in zip(first(x), second(x))]
    combined = kspec.combine_ensemble([first, second])
    assert combined.output_names == ["a", "b"]
    for got, want in zip(combined.predict(x, verbose=0), expected):
        np.testing.assert_allclose(got, want, atol=1e-6)
