"""The custom Keras classes against hand-computed values (and in graph mode via fit)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kspec  # noqa: E402
from kspec.components import (  # noqa: E402
    ContentLoss,
    FixedKernel,
    LabelColumnsLoss,
    Maxout,
    StyleLoss,
    gram_matrix,
    uncertainty_weighted_total,
    with_uncertainty_weighting,
)
from kspec.kernels import kernel_2d  # noqa: E402


# -- maxout ----------------------------------------------------------------------------------
def test_maxout_takes_the_max_of_consecutive_groups():
    x = np.array([[1.0, 3.0, -2.0, -5.0, 0.0, 7.0]], "float32")
    np.testing.assert_array_equal(Maxout(pieces=3)(x), [[3.0, 7.0]])
    np.testing.assert_array_equal(Maxout(pieces=2)(x), [[3.0, -2.0, 7.0]])


def test_maxout_works_on_conv_channels_and_rejects_bad_widths():
    maps = np.arange(2 * 3 * 3 * 4, dtype="float32").reshape(2, 3, 3, 4) * np.array(
        [1, -1, -1, 1], "float32")
    out = np.asarray(Maxout(pieces=2)(maps))
    assert out.shape == (2, 3, 3, 2)
    np.testing.assert_array_equal(out, np.maximum(maps[..., 0::2], maps[..., 1::2]))
    with pytest.raises(ValueError, match="divisible by 3"):
        Maxout(pieces=3)(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="at least 2"):
        Maxout(pieces=1)


# -- content and style losses ----------------------------------------------------------------
# A 2x2 feature map with 2 channels; positions (1,0), (0,1), (1,1), (2,0).
F = np.array([[[[1, 0], [0, 1]], [[1, 1], [2, 0]]]], "float32")


def test_gram_matrix_by_hand():
    # G[c, d] = sum over positions of F[p, c] F[p, d]
    np.testing.assert_allclose(gram_matrix(F)[0], [[6.0, 1.0], [1.0, 2.0]])


def test_style_loss_by_hand_and_position_invariance():
    # sum(G^2) / (4 N^2 M^2) with N=2 channels, M=4 positions: (36+1+1+4)/(4*4*16)
    assert float(StyleLoss()(np.zeros_like(F), F)) == pytest.approx(42 / 256)
    # Gram matrices forget where a feature is: moving positions changes nothing.
    shuffled = F.reshape(1, 4, 2)[:, [3, 1, 0, 2]].reshape(1, 2, 2, 2)
    target = np.random.default_rng(0).normal(size=F.shape).astype("float32")
    assert float(StyleLoss()(target, shuffled)) == pytest.approx(float(StyleLoss()(target, F)))
    assert float(ContentLoss()(target, shuffled)) != pytest.approx(float(ContentLoss()(target, F)))


def test_content_loss_by_hand():
    assert float(ContentLoss()(np.zeros_like(F), F)) == pytest.approx(8 / 8)


def test_label_columns_loss_ignores_the_group_column():
    y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "float32")
    p = np.array([[0.8], [0.3], [0.6]], "float32")
    inner = keras.losses.BinaryCrossentropy()
    wrapped = LabelColumnsLoss(inner)
    assert float(wrapped(y, p)) == pytest.approx(float(inner(y[:, :1], p)), rel=1e-6)
    assert inner.reduction == "sum_over_batch_size"  # the caller's loss is not modified
    again = LabelColumnsLoss.from_config(wrapped.get_config())
    assert float(again(y, p)) == pytest.approx(float(wrapped(y, p)), rel=1e-6)


# -- uncertainty weighting -------------------------------------------------------------------
def test_uncertainty_total_by_hand():
    # exp(-log 2) * 2 + log 2 + exp(-log 0.5) * 1 + log 0.5 = 1 + 2 + 0
    assert float(uncertainty_weighted_total([2.0, 1.0], np.log([2.0, 0.5]))) == pytest.approx(3.0)
    assert float(uncertainty_weighted_total([4.0, 0.25], [0.0, 0.0])) == pytest.approx(4.25)


def test_uncertainty_weights_converge_to_inverse_losses():
    import tensorflow as tf

    from kspec.components import UncertaintyWeighting

    layer = UncertaintyWeighting(["a", "b"])
    opt = keras.optimizers.SGD(0.1)
    losses = [tf.constant(4.0), tf.constant(0.25)]
    for _ in range(300):
        with tf.GradientTape() as tape:
            total = layer(losses)
        opt.apply_gradients(zip(tape.gradient(total, layer.trainable_variables),
                                layer.trainable_variables))
    # d/ds (e^-s L + s) = 0 at s = log L: the weight e^-s becomes 1/L.
    weights = layer.task_weights()
    assert weights["a"] == pytest.approx(0.25, rel=0.02)
    assert weights["b"] == pytest.approx(4.0, rel=0.02)


def _two_task_model():
    inp = keras.Input((3,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="trunk")(inp)
    return keras.Model(inp, [keras.layers.Dense(1, name="clean")(h),
                             keras.layers.Dense(1, name="noisy")(h)], name="two_tasks")


def test_uncertainty_model_downweights_the_noisy_task_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype("float32")
    clean = x @ np.array([[1.0], [-1.0], [0.5]], "float32")
    noisy = clean + rng.normal(scale=3.0, size=clean.shape).astype("float32")
    weighted = with_uncertainty_weighting(_two_task_model(), {"clean": "mse", "noisy": "mse"})
    weighted.compile(optimizer=keras.optimizers.Adam(0.05), metrics={"clean": ["mae"]})
    history = weighted.fit({"x": x}, {"clean": clean, "noisy": noisy}, epochs=15,
                           batch_size=64, verbose=0)
    assert "clean_mae" in history.history
    w = weighted.task_weights()
    # Noise variance 9: the noisy weight falls towards 1/9; the clean one rises.
    assert w["noisy"] < 0.3 and w["clean"] > 3 * w["noisy"], w
    path = tmp_path / "weighted.keras"
    weighted.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.task_weights() == pytest.approx(w)
    for key in ("clean", "noisy"):
        np.testing.assert_allclose(loaded({"x": x[:5]})[key], weighted({"x": x[:5]})[key],
                                   rtol=1e-6)
    assert loaded.inner.output_names == ["clean", "noisy"]


def test_uncertainty_model_needs_a_loss_per_output():
    with pytest.raises(ValueError, match="missing \\['noisy'\\]"):
        with_uncertainty_weighting(_two_task_model(), {"clean": "mse"})


# -- fixed kernels ---------------------------------------------------------------------------
def test_fixed_kernels_filter_images():
    image = np.zeros((1, 5, 5, 1), "float32")
    image[..., 3:, 0] = 1.0  # a vertical edge between columns 2 and 3
    conv = lambda name, **kw: keras.layers.Conv2D(  # noqa: E731
        1, 3, use_bias=False, kernel_initializer=FixedKernel(name, **kw))
    edges = np.asarray(conv("sobel_x")(image))[0, :, :, 0]
    np.testing.assert_allclose(edges, [[0, 4, 4]] * 3)  # responds next to the edge only
    assert np.abs(np.asarray(conv("sobel_y")(image))).max() == 0  # no horizontal edge
    flat = np.full((1, 4, 4, 1), 2.0, "float32")
    for name in ("box_blur", "gaussian_blur"):
        np.testing.assert_allclose(conv(name)(flat), 2.0, rtol=1e-6)  # blurs keep the mean
    np.testing.assert_allclose(conv("identity_kernel")(image), image[:, 1:-1, 1:-1])
    np.testing.assert_allclose(kernel_2d("gaussian_blur", 3, 3) * 16,
                               [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert kernel_2d("gaussian_blur", 5, 5, sigma=1.0).sum() == pytest.approx(1.0)


def test_fixed_kernel_channel_modes():
    per = np.asarray(FixedKernel("sharpen")((3, 3, 3, 3)))
    assert np.abs(per[:, :, 0, 1]).sum() == 0 and per[1, 1, 2, 2] == 5.0
    mean = np.asarray(FixedKernel("box_blur", channels="mean")((3, 3, 3, 2)))
    np.testing.assert_allclose(mean.sum(axis=(0, 1, 2)), [1.0, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="conv2d kernels"):
        FixedKernel("sobel_x")((3, 4))
    with pytest.raises(ValueError, match="3x3 filter"):
        FixedKernel("sobel_x")((2, 2, 1, 1))


# -- PReLU -----------------------------------------------------------------------------------
def test_prelu_slope_is_learned():
    from kspec.compiler.activations import prelu

    layer = prelu(alpha=0.25)
    x = -np.abs(np.random.default_rng(1).normal(size=(64, 2))).astype("float32")
    np.testing.assert_allclose(layer(x), 0.25 * x, rtol=1e-6)
    inp = keras.Input((2,))
    model = keras.Model(inp, layer(inp))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, 0.5 * x, epochs=30, verbose=0)  # the best slope for negatives is 0.5
    assert np.asarray(layer.alpha).mean() == pytest.approx(0.5, abs=0.05)


def test_uncertainty_weighting_from_a_spec(tmp_path):
    from kspec.compiler.model import build_model
    from kspec.components.multitask import from_spec
    from kspec.validation import load_spec

    raw = {"model": {"inputs": [{"name": "x", "shape": [3]}], "blocks": [
        {"name": "trunk", "inputs": "x", "layers": [
            {"type": "dense", "units": 8, "activation": "relu",
             "kernel_initializer": "he_normal"}]},
        {"name": "a", "inputs": "trunk", "layers": [{"type": "dense", "units": 1}]},
        {"name": "b", "inputs": "trunk", "layers": [{"type": "dense", "units": 1,
                                                      "activation": "sigmoid"}]}],
        "outputs": [{"name": "a"}, {"name": "b"}]},
        "training": {"loss": {"a": {"type": "huber", "delta": 2.0}, "b": "bce"},
                     "loss_weighting": "uncertainty"}}
    spec = load_spec(raw)
    weighted = from_spec(build_model(spec), spec)
    assert type(weighted.task_losses["a"]).__name__ == "Huber"
    weighted.compile(optimizer="adam", metrics={"b": ["accuracy"]})
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    weighted.fit({"x": x}, {"a": x[:, :1], "b": (x[:, 1:2] > 0).astype("float32")},
                 epochs=2, verbose=0)
    assert weighted.task_weights()["a"] != 1.0
    with pytest.raises(kspec.SpecError, match="training.loss_weights: fixed loss_weights"):
        load_spec({**raw, "training": {**raw["training"], "loss_weights": {"a": 1.0}}})
    single = {"model": {"inputs": [{"name": "x", "shape": [3]}],
                        "layers": [{"type": "dense", "units": 1}]},
              "training": {"loss": "mse", "loss_weighting": "uncertainty"}}
    with pytest.raises(kspec.SpecError, match="training.loss_weighting: uncertainty weighting"):
        load_spec(single)


# -- initializer scale -----------------------------------------------------------------------
@pytest.mark.parametrize("stddev,expect", [(0.01, "vanish"), (1.0, "saturate")])
def test_small_and_big_random_weights_in_a_deep_tanh_stack(stddev, expect):
    """The scale a spec gives a random initializer is the weights' scale, with the textbook
    effect: small weights make a deep tanh stack's activations vanish, big ones saturate."""
    from kspec.compiler.model import build_model
    from kspec.validation import load_spec

    init = {"type": "random_normal", "stddev": stddev, "seed": 1}
    layers = [{"type": "dense", "units": 64, "activation": "tanh", "kernel_initializer": init,
               "name": f"t{i}"} for i in range(6)]
    spec = load_spec({"model": {"inputs": [{"name": "x", "shape": [64]}], "layers": layers},
                      "training": {"loss": "mse"}})
    model = build_model(spec)
    kernel = model.get_layer("t0").get_weights()[0]
    assert kernel.std() == pytest.approx(stddev, rel=0.1)
    x = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
    last = np.asarray(model({"x": x}))
    if expect == "vanish":
        assert np.abs(last).mean() < 1e-4
    else:
        assert (np.abs(last) > 0.9).mean() > 0.5
