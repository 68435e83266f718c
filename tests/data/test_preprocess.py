"""Preprocessing is fitted on the training split only and travels with the model."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kspec.data.loading import load_data
from kspec.data.preprocess import input_layers
from kspec.errors import SpecError


def _apply(layers, x):
    out = x
    for layer in layers:
        out = layer(out, training=False)
    return np.asarray(out)


def _tabular(shift=0.0, n=300, seed=0):
    rng = np.random.default_rng(seed)
    # correlated columns on very different scales
    base = rng.normal(size=(n, 3))
    x = np.stack([base[:, 0] * 100 + 5, base[:, 0] + base[:, 1] * 0.1, base[:, 2] * 3 - 7], 1)
    return (x + shift).astype("float32"), np.arange(n) % 3


def test_statistics_come_from_the_training_split_alone(make_spec):
    x, y = _tabular()
    shifted, yt = _tabular(shift=50.0, seed=1)
    spec = make_spec({"preprocessing": [{"type": "zscore"}]})
    plain = input_layers(spec, load_data(spec, {"train": (x, y)}))["features"][0]
    data = load_data(spec, {"train": (x, y), "validation": (shifted, yt), "test": (shifted, yt)})
    layer = input_layers(spec, data)["features"][0]
    np.testing.assert_allclose(layer.offset.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.offset.numpy(), plain.offset.numpy())
    np.testing.assert_allclose(layer.scale.numpy(), 1 / x.std(0), rtol=1e-4)
    z = _apply([layer], x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    assert _apply([layer], shifted).mean() > 1.0  # the test shift is visible, not absorbed


@pytest.mark.parametrize("lo, hi, per", [(0.0, 1.0, "feature"), (-1.0, 1.0, "global")])
def test_min_max_maps_training_range(make_spec, lo, hi, per):
    x, y = _tabular()
    spec = make_spec({"preprocessing": [{"type": "min_max", "range": [lo, hi], "per": per}]})
    out = _apply(input_layers(spec, load_data(spec, (x, y)))["features"], x)
    axis = 0 if per == "feature" else None
    np.testing.assert_allclose(out.min(axis), lo, atol=1e-5)
    np.testing.assert_allclose(out.max(axis), hi, atol=1e-5)


def test_channel_mean_subtraction(make_spec):
    rng = np.random.default_rng(0)
    x = (rng.random((60, 6, 6, 3)) * [10, 100, 200]).astype("float32")
    spec = make_spec({"preprocessing": [{"type": "channel_mean"}]})
    (layer,) = input_layers(spec, load_data(spec, (x, np.arange(60) % 3)))["features"]
    assert tuple(layer.offset.shape) == (3,)
    out = _apply([layer], x)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(out - x, np.broadcast_to(-x.mean((0, 1, 2)), x.shape), rtol=1e-4)


@pytest.mark.parametrize("method, components", [("zca", None), ("pca", None), ("pca", 2)])
def test_whitening_gives_identity_covariance_on_training_data(make_spec, method, components):
    x, y = _tabular()
    step = {"type": "whiten", "method": method, "epsilon": 1e-9}
    if components:
        step["components"] = components
    spec = make_spec({"preprocessing": [step]})
    (layer,) = input_layers(spec, load_data(spec, (x, y)))["features"]
    out = _apply([layer], x).astype("float64")
    k = components or 3
    assert out.shape == (300, k)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True), np.eye(k), atol=1e-3)
    matrix = layer.matrix.numpy()
    # ZCA rotates back onto the input axes: its whitening matrix is symmetric; PCA's is not
    symmetric = matrix.shape[0] == matrix.shape[1] and np.allclose(matrix, matrix.T, rtol=1e-4)
    assert symmetric == (method == "zca")


def test_zca_keeps_image_shape(make_spec):
    rng = np.random.default_rng(0)
    x = rng.random((200, 4, 4, 1)).astype("float32")
    spec = make_spec({"preprocessing": [{"type": "whiten"}]})
    out = _apply(input_layers(spec, load_data(spec, (x, np.arange(200) % 3)))["features"], x)
    assert out.shape == x.shape
    cov = np.cov(out.reshape(200, 16), rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(16), atol=2e-3)


def test_steps_chain_each_fitted_on_the_previous_output(make_spec):
    x, y = _tabular()
    spec = make_spec({"preprocessing": [{"type": "zscore"}, {"type": "min_max"}]})
    layers = input_layers(spec, load_data(spec, (x, y)))["features"]
    assert [la.name for la in layers] == ["features_zscore_0", "features_min_max_0"]
    out = _apply(layers, x)
    np.testing.assert_allclose(out.min(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.max(0), 1, atol=1e-5)


def test_fitting_on_test_separately_is_explicit_and_warns(make_spec, caplog):
    x, y = _tabular()
    shifted, yt = _tabular(shift=50.0, seed=1)
    spec = make_spec({"preprocessing": [{"type": "zscore"}, {"type": "whiten", "method": "pca"}],
                      "fit_test_separately": True})
    data = load_data(spec, {"train": (x, y), "test": (shifted, yt)})
    with caplog.at_level(logging.WARNING, logger="kspec.data"):
        layers = input_layers(spec, data)["features"]
    assert "test distribution in advance" in caplog.text
    # the model's (train-fitted) layers now give the test split its own zero mean and
    # identity covariance
    out = _apply(layers, data.test.x["features"]).astype("float64")
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
    # (epsilon=1e-5 shrinks the smallest of the test variances, ~0.005, by 0.2%)
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True), np.eye(3), atol=5e-3)
    # and calling it again does not apply the correction twice
    input_layers(spec, data)
    np.testing.assert_allclose(_apply(layers, data.test.x["features"]), out, atol=1e-3)


def test_step_for_an_unknown_input_and_oversized_whitening(make_spec):
    x, y = _tabular()
    spec = make_spec({"preprocessing": [{"type": "zscore", "inputs": ["feature"]}]})
    with pytest.raises(SpecError) as e:
        input_layers(spec, load_data(spec, (x, y)))
    assert e.value.path == "data.preprocessing[0].inputs[0]"
    big = np.zeros((10, 100, 100, 1), "float32")
    spec = make_spec({"preprocessing": [{"type": "whiten"}]})
    with pytest.raises(SpecError, match="10000 x 10000 covariance"):
        input_layers(spec, load_data(spec, (big, np.zeros(10, int))))


def test_schema_rejects_bad_steps(make_spec):
    with pytest.raises(SpecError) as e:
        make_spec({"preprocessing": [{"type": "zscroe"}]})
    assert "data.preprocessing[0].type" in str(e.value) and "zscore" in str(e.value)
    with pytest.raises(SpecError, match="low < high"):
        make_spec({"preprocessing": [{"type": "min_max", "range": [1, 0]}]})
    with pytest.raises(SpecError, match="components"):
        make_spec({"preprocessing": [{"type": "whiten", "method": "zca", "components": 2}]})


def test_fit_test_separately_needs_a_test_split(make_spec):
    x, y = _tabular()
    spec = make_spec({"preprocessing": [{"type": "zscore"}], "fit_test_separately": True})
    with pytest.raises(SpecError) as e:
        input_layers(spec, load_data(spec, (x, y)))
    assert e.value.path == "data.fit_test_separately"


def test_saved_and_exported_models_apply_the_training_statistics(make_spec, tmp_path):
    """Every fitted layer round-trips through .keras (safe mode) and a SavedModel export."""
    import keras
    import tensorflow as tf

    from kspec.compiler.model import build_model

    x, y = _tabular()
    spec = make_spec({"preprocessing": [{"type": "min_max", "range": [-1, 1]},
                                        {"type": "zscore", "per": "global"},
                                        {"type": "whiten", "method": "pca", "components": 2}],
                      "augmentation": [{"type": "laplace_noise", "scale": 0.5},
                                       {"type": "brightness", "delta": 0.5}]},
                     layers=[{"type": "dense", "units": 3, "activation": "softmax"}])
    data = load_data(spec, (x, y))
    model = build_model(spec, data.input_shapes(), input_layers(spec, data))
    raw = x[:20] * 1.5 + 3  # raw, unseen inputs
    expected = np.asarray(model.predict(raw, verbose=0))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(raw, verbose=0), expected, rtol=1e-5, atol=1e-6)
    for layer in model.layers[1:4]:
        for a, b in zip(layer.weights, loaded.get_layer(layer.name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.export(tmp_path / "saved", verbose=False)
    serving = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    (served,) = serving(features=tf.constant(raw)).values()
    np.testing.assert_allclose(np.asarray(served), expected, rtol=1e-5, atol=1e-6)


def test_statistics_accumulated_in_row_blocks_match_numpy(make_spec, monkeypatch):
    import kspec.data.preprocess as pre

    monkeypatch.setattr(pre, "CHUNK_VALUES", 50)  # 16 rows of 3 values per block
    x, y = _tabular()
    spec = make_spec({"preprocessing": [{"type": "zscore"}, {"type": "channel_mean"},
                                        {"type": "whiten", "method": "zca", "epsilon": 1e-9}]})
    fitted = pre.fit_preprocessing(spec, {"features": x})["features"]
    layers = [f.make_layer(f"l{i}") for i, f in enumerate(fitted)]
    np.testing.assert_allclose(layers[0].offset.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layers[0].scale.numpy(), 1 / x.std(0), rtol=1e-5)
    out = _apply(layers, x).astype("float64")
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True), np.eye(3), atol=1e-3)
