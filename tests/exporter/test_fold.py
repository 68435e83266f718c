"""Batch-norm folding: equivalent outputs, fewer layers, clear reasons for what stays."""

from __future__ import annotations

import numpy as np
import pytest

from kspec import export
from kspec.exporter.fold import fold_batch_norm


def _bn_names(model):
    import keras

    return sorted(la.name for la in model.layers if isinstance(la, keras.layers.BatchNormalization))


def _randomize(model, seed):
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            if layer.center:
                layer.beta.assign(rng.normal(size=n).astype("float32"))
            layer.moving_mean.assign(rng.normal(size=n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype("float32"))


def test_fold_is_numerically_equivalent(rich_model, digits):
    x, _ = digits
    before = [w.numpy().copy() for w in rich_model.weights]
    result = fold_batch_norm(rich_model)
    assert result.folded == [("conv_bn", "conv"), ("hidden_bn", "hidden")]
    assert _bn_names(result.model) == [] and _bn_names(rich_model) == ["conv_bn", "hidden_bn"]
    assert len(result.model.layers) == len(rich_model.layers) - 2

    want = rich_model.predict(x, verbose=0)
    got = result.model.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # The original model's weights are untouched.
    for old, w in zip(before, rich_model.weights):
        np.testing.assert_array_equal(old, w.numpy())


@pytest.mark.parametrize("conv", ["conv1d", "conv2d", "conv3d"])
def test_fold_every_convolution_rank(conv):
    import keras

    shape = {"conv1d": (10, 3), "conv2d": (6, 6, 3), "conv3d": (4, 4, 4, 3)}[conv]
    layer = {"conv1d": keras.layers.Conv1D, "conv2d": keras.layers.Conv2D,
             "conv3d": keras.layers.Conv3D}[conv]
    inp = keras.Input(shape, name="x")
    h = layer(5, 3, padding="same", name="c")(inp)
    h = keras.layers.BatchNormalization(epsilon=0.01, name="bn")(h)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling1D()(
        keras.layers.Reshape((-1, 5))(h)))
    _randomize(model, 4)
    x = np.random.default_rng(0).normal(size=(8, *shape)).astype("float32")
    result = fold_batch_norm(model)
    assert result.folded == [("bn", "c")]
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_what_cannot_fold_is_kept_with_a_reason():
    import keras

    inp = keras.Input((6,), name="x")
    a = keras.layers.BatchNormalization(name="bn_input")(inp)  # follows the input
    b = keras.layers.Dense(4, activation="relu", name="relu_dense")(a)
    b = keras.layers.BatchNormalization(name="bn_after_relu")(b)  # a non-linearity between
    c = keras.layers.Dense(4, name="branch")(b)
    c_bn = keras.layers.BatchNormalization(name="bn_branch")(c)  # c also feeds the output
    d = keras.layers.Dense(3, use_bias=False, name="plain")(keras.layers.Add()([c, c_bn]))
    d = keras.layers.BatchNormalization(center=False, name="bn_plain")(d)
    model = keras.Model(inp, d)
    _randomize(model, 5)
    result = fold_batch_norm(model)
    assert result.folded == [("bn_plain", "plain")]
    reasons = dict(result.skipped)
    assert "not a Dense or Conv layer" in reasons["bn_input"]
    assert "applies activation 'relu'" in reasons["bn_after_relu"]
    assert "also used elsewhere" in reasons["bn_branch"]
    x = np.random.default_rng(1).normal(size=(16, 6)).astype("float32")
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_sequential_models_fold_too():
    import keras

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    _randomize(model, 6)
    result = fold_batch_norm(model)
    assert len(result.folded) == 1 and _bn_names(result.model) == []
    x = np.random.default_rng(2).normal(size=(7, 5)).astype("float32")
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_folded_export_matches_the_unfolded_model_with_fewer_ops(rich_model, digits, tmp_path):
    import tensorflow as tf

    x, _ = digits
    plain = export(rich_model, tmp_path, name="plain", sample=x[:64])
    folded = export(rich_model, tmp_path, name="folded", sample=x[:64], fold_batchnorm=True)
    assert folded.fold["folded"] == [{"batch_norm": "conv_bn", "into": "conv"},
                                     {"batch_norm": "hidden_bn", "into": "hidden"}]
    assert folded.check.passed  # compared against the original, unfolded Keras model

    def ops(path):
        fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        graph = fn.graph.as_graph_def()
        return sum(len(f.node_def) for f in graph.library.function)

    assert ops(folded.path) < ops(plain.path)
    served = tf.saved_model.load(str(folded.path)).signatures["serving_default"](
        image=tf.constant(x[200:])
    )["digit"].numpy()
    np.testing.assert_allclose(served, rich_model.predict(x[200:], verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_a_batch_norm_output_keeps_its_name(tmp_path):
    """Folding the last layer must not rename the output (the signature key)."""
    import keras

    inp = keras.Input((5,), name="x")
    h = keras.layers.Dense(3, name="dense_last")(inp)
    out = keras.layers.BatchNormalization(name="score")(h)
    model = keras.Model(inp, out)
    _randomize(model, 7)
    result = fold_batch_norm(model)
    assert result.folded == [("score", "dense_last")]
    assert result.model.output_names == ["score"]
    x = np.random.default_rng(3).normal(size=(6, 5)).astype("float32")
    exported = export(model, tmp_path, sample=x, fold_batchnorm=True, format="keras")
    assert list(exported.signature["outputs"]) == ["score"] and exported.check.passed


def test_batch_norms_inside_nested_models_are_reported():
    import keras

    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                             keras.layers.BatchNormalization(name="inner_bn")], name="base")
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(base(inp)))
    result = fold_batch_norm(model)
    assert result.folded == []
    assert result.skipped == [("base/inner_bn", "inside the nested model 'base' (only the "
                                                "top-level graph is folded)")]
