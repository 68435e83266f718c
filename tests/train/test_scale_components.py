"""Every kspec component computes correctly under both mixed-precision policies: fitted
preprocessing, augmentation, layer activations (maxout, PReLU, ...), fixed kernels, kspec's
losses and metrics (fairness), learned uncertainty weighting, TTA, ensembles and batch-norm
folding. "Correctly": the same weights give the float32 result within the rounding of the
policy's compute dtype, and a training step stays finite."""

from __future__ import annotations

import numpy as np
import pytest

import kspec
from kspec import registry
from kspec.compiler.precision import dtype_policy
from tests.helpers import components as h

registry.load_builtins()
POLICIES = ["mixed_bfloat16", "mixed_float16"]
# Relative rounding of the compute dtype (8 and 11 significant bits), with room for a few
# roundings in a row.
TOL = {"mixed_bfloat16": 3e-2, "mixed_float16": 4e-3}
KSPEC = lambda reg, name: type(reg.build(name, "")).__module__.startswith("kspec.")  # noqa: E731


def _with(spec: dict, precision: str) -> dict:
    return {**spec, "training": {**spec["training"], "precision": precision}}


# -- fitted preprocessing: raw inputs and statistics stay float32 -----------------------------
PREPROCESSING = {"min_max": {"type": "min_max", "range": [-1, 1]}, "zscore": {"type": "zscore"},
                 "whiten": {"type": "whiten", "method": "zca"},
                 "channel_mean": {"type": "channel_mean"}}


def test_every_preprocessing_and_augmentation_step_is_checked_here():
    assert set(PREPROCESSING) == set(registry.PREPROCESSING.names())
    assert set(AUGMENTATION_PARAMS) == set(registry.AUGMENTATIONS.names())


@pytest.mark.parametrize("precision", POLICIES)
@pytest.mark.parametrize("step", sorted(PREPROCESSING))
def test_fitted_preprocessing_keeps_the_precision_of_raw_inputs(step, precision):
    """Raw values near 1000 with unit spread: in bfloat16 1000.5 is 1000 (steps of 4 there),
    so subtracting the mean after casting would leave errors of several units."""
    from kspec.data.loading import load_data
    from kspec.data.preprocess import input_layers

    rng = np.random.default_rng(0)
    shape = (4, 4, 2) if step == "channel_mean" else (4,)
    x = (1000.0 + rng.normal(size=(64, *shape))).astype("float32")
    spec = kspec.load_spec({"name": "p", "data": {"preprocessing": [PREPROCESSING[step]]},
                            "model": {"inputs": [{"name": "x", "shape": list(shape)}],
                                      "layers": [{"type": "flatten"}, {"type": "dense",
                                                                       "units": 1}]},
                            "training": {"loss": "mse"}})
    data = load_data(spec, (x, np.zeros(64, "float32")))
    (want_layer,) = input_layers(spec, data)["x"]
    with dtype_policy(precision):
        (layer,) = input_layers(spec, data)["x"]
    # float32 whatever the policy: the next layer casts the normalized values
    assert layer.compute_dtype == "float32" and layer(x).dtype.name == "float32"
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(want_layer(x)), rtol=1e-6,
                               atol=1e-5)
    with dtype_policy(precision):  # inside a mixed model, after the cast to compute dtype
        model = kspec.build(spec, data.input_shapes(), {"x": [layer]})
    hidden = model.layers[2](model.layers[1](x))
    assert hidden.dtype.name == precision.split("_")[1]


AUGMENTATION_PARAMS = {
    "brightness": {"delta": 0.2}, "contrast": {"factor": 0.3}, "crop": {"height": 6, "width": 6},
    "flip": {}, "gaussian_noise": {"stddev": 0.1}, "laplace_noise": {"scale": 0.1},
    "rotate": {"factor": 0.1}, "translate": {"height": 0.2, "width": 0.2},
    "zoom": {"height": 0.2}}


# -- augmentation -----------------------------------------------------------------------------
@pytest.mark.parametrize("precision", POLICIES)
@pytest.mark.parametrize("name", sorted(AUGMENTATION_PARAMS))
def test_augmentation_is_finite_in_training_and_inert_otherwise(name, precision):
    entry = registry.AUGMENTATIONS.get(name)
    step = entry.config.model_validate({"type": name, **AUGMENTATION_PARAMS[name]})
    with dtype_policy(precision):
        layer, _ = entry.implementation()(step, seed=3, name="aug", shape=(8, 8, 1), where="a")
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 1)).astype("float32")
    trained = np.asarray(layer(x, training=True), "float32")
    assert np.isfinite(trained).all()  # laplace noise drew -inf in bfloat16 before
    inert = np.asarray(layer(x, training=False), "float32")
    expected = x[:, 1:7, 1:7] if name == "crop" else x
    np.testing.assert_allclose(inert, expected, rtol=TOL[precision], atol=TOL[precision])


# -- layers, kernels, losses and metrics: the same weights give the float32 result ------------
def _compare(spec: dict, x, y, precision: str, tol: float | None = None):
    """Build ``spec`` in float32 and under ``precision`` with the same weights; compare the
    outputs and the evaluated loss/metrics; train one step under ``precision``."""
    from kspec.compiler.model import build_model
    from kspec.train.compile import compile_model
    from kspec.train.scale import scope

    tol = TOL[precision] if tol is None else tol
    plain = kspec.load_spec(spec)
    mixed = kspec.load_spec(_with(spec, precision))
    with scope(plain):
        reference = build_model(plain)
    with scope(mixed):
        model = compile_model(build_model(mixed), mixed)
    model.set_weights(reference.get_weights())
    compile_model(reference, plain)
    assert model.outputs[0].dtype == "float32"
    np.testing.assert_allclose(np.asarray(model({"x": x})), np.asarray(reference({"x": x})),
                               rtol=tol, atol=tol)
    got = model.evaluate({"x": x}, y, verbose=0, return_dict=True)
    want = reference.evaluate({"x": x}, y, verbose=0, return_dict=True)
    assert got.keys() == want.keys()
    for key in got:
        assert got[key] == pytest.approx(want[key], rel=5 * tol, abs=5 * tol), key
    logs = model.train_on_batch({"x": x}, y, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values()), logs
    return model


@pytest.mark.parametrize("precision", POLICIES)
@pytest.mark.parametrize("name", [e.name for e in registry.ACTIVATIONS.entries()
                                  if "layer" in e.tags])
def test_activation_layers(name, precision):
    layers = [{"type": "dense", "units": 4, "activation": name, "name": "hidden"},
              {"type": "dense", "units": 1, "name": "out"}]
    _compare(h.spec_dict(layers, "mse"), h.X_VEC, h.Y_REG, precision)


@pytest.mark.parametrize("precision", POLICIES)
@pytest.mark.parametrize("name", [e.name for e in registry.INITIALIZERS.entries()
                                  if "fixed_kernel" in e.tags])
def test_fixed_kernels(name, precision):
    layers = [{"type": "conv2d", "filters": 2, "kernel_size": 3, "kernel_initializer": name,
               "use_bias": False, "trainable": False, "name": "filter"},
              {"type": "flatten"}, {"type": "dense", "units": 1}]
    model = _compare(h.spec_dict(layers, "mse", shape=(5, 5, 1)), h.X_IMG, h.Y_REG, precision)
    assert model.get_layer("filter").compute_dtype == precision.split("_")[1]


@pytest.mark.parametrize("precision", POLICIES)
@pytest.mark.parametrize("name", [n for n in registry.LOSSES.names()
                                  if KSPEC(registry.LOSSES, {"type": n, "loss": "bce"}
                                           if n == "label_columns" else n)])
def test_kspec_losses(name, precision):
    recipe = h.recipe_for(registry.LOSSES.get(name).tags)
    loss = recipe["loss"] if name == "label_columns" else name
    hidden = ({"type": "dense", "units": 4, "activation": "relu"} if recipe["x"].ndim == 2
              else {"type": "conv2d", "filters": 4, "kernel_size": 1, "activation": "relu"})
    layers = [hidden, *recipe["layers"]]
    spec = h.spec_dict(layers, loss, shape=recipe["x"].shape[1:])
    _compare(spec, recipe["x"], recipe["y"], precision)


@pytest.mark.parametrize("precision", POLICIES)
@pytest.mark.parametrize("name", [e.name for e in registry.METRICS.entries()
                                  if "packed_groups" in e.tags])
def test_fairness_metrics(name, precision):
    recipe = h.RECIPES["packed_groups"]
    layers = [{"type": "dense", "units": 4, "activation": "relu"}, *recipe["layers"]]
    spec = h.spec_dict(layers, recipe["loss"], metrics=[name])
    # Thresholded predictions can flip for an example within rounding of 0.5; the fixed
    # seed keeps this batch clear of that, so metric values agree like the loss does.
    _compare(spec, recipe["x"], recipe["y"], precision)


# -- whole runs: learned loss weights, TTA, ensembles, batch-norm folding ---------------------
@pytest.mark.parametrize("precision", POLICIES)
def test_learned_uncertainty_weighting(precision, tmp_path):
    from tests.train.test_multitask import _data, two_head_spec

    spec = _with(two_head_spec(loss_weighting="uncertainty", loss_weights=None, epochs=3),
                 precision)
    run = kspec.fit(spec, data=_data(), out=tmp_path)
    assert run.model.outputs[0].dtype == "float32"
    assert all(np.isfinite(v) for v in run.task_weights.values())
    assert all(np.isfinite(run.history["loss"]))
    assert run.history["loss"][-1] < run.history["loss"][0]


@pytest.mark.parametrize("precision", POLICIES)
def test_tta_and_an_ensemble(precision, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 1)).astype("float32")
    y = (x[:, :, :3].mean(axis=(1, 2, 3)) > x[:, :, 3:].mean(axis=(1, 2, 3))).astype("int64")
    spec = {"name": "tta", "seed": 2, "model": {
        "inputs": [{"name": "image", "shape": [6, 6, 1]}],
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
                   {"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"}]},
        "training": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "epochs": 1, "verbose": 0, "tta": {"scheme": "flip"},
                     "precision": precision},
        "ensemble": {"members": 2}}
    run = kspec.fit(spec, data={"train": (x, y), "test": (x, y)}, out=tmp_path)
    model = run.model
    assert model.outputs[0].dtype == "float32" and model.dtype_policy.name == precision
    members = [np.asarray(model.get_layer(f"member_{k}")([x])) for k in range(2)]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.mean(members, axis=0),
                               atol=TOL[precision])
    assert np.isfinite(run.metrics["test_tta"]["loss"])


@pytest.mark.parametrize("precision", POLICIES)
def test_batch_norm_folding_passes_parity_at_the_precision_tolerance(precision, tmp_path):
    from kspec.exporter.parity import PRECISION_TOLERANCES

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("float32")
    spec = {"name": "bn", "seed": 1, "data": {"splits": {"test": 0.2}}, "model": {
        "inputs": [{"name": "x", "shape": [6]}],
        "layers": [{"type": "dense", "units": 8}, {"type": "batch_norm"},
                   {"type": "activation", "activation": "relu"},
                   {"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"loss": "binary_crossentropy", "epochs": 2, "verbose": 0,
                     "precision": precision}}
    run = kspec.fit(spec, data=(x, y), out=tmp_path)
    result = kspec.export(run, out=tmp_path / "models", fold_batchnorm=True)
    assert result.fold["folded"] and result.check.passed
    assert result.check.precision == precision
    assert (result.check.rtol, result.check.atol) == PRECISION_TOLERANCES[precision]
    assert f"for {precision}" in result.check.summary()
    assert result.signature["inputs"]["x"]["dtype"] == "float32"
