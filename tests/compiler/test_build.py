"""Spec -> Keras model: names, shapes, determinism, activations that build to layers."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import kspec
from kspec.compiler.model import build_model


@pytest.fixture
def shaped(tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["model"]["inputs"][0]["shape"] = [4]
    return spec


def test_inputs_layers_and_output_are_named(shaped):
    shaped["model"]["layers"][0]["name"] = "hidden"
    model = build_model(shaped)
    assert [t.name for t in model.inputs] == ["features"]
    assert model.output_names == ["output"]
    assert [layer.name for layer in model.layers] == ["features", "hidden", "output"]
    assert model.name == "tiny"


def test_same_seed_same_initial_weights_other_seed_differs(shaped):
    a = build_model(shaped).get_weights()
    b = build_model(shaped).get_weights()
    shaped["seed"] = 2
    c = build_model(shaped).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_shapes_from_data_when_the_spec_has_none(tiny_spec):
    model = build_model(tiny_spec, shapes={"features": (6,)})
    assert tuple(model.inputs[0].shape) == (None, 6)


def test_layer_options_reach_keras(shaped):
    shaped["model"]["layers"] = [
        {"type": "reshape", "target_shape": [2, 2, 1]},
        {"type": "conv2d", "filters": 3, "kernel_size": 2, "padding": "same",
         "kernel_initializer": "he_normal", "kernel_regularizer": {"type": "l2", "l2": 0.5},
         "use_bias": False, "trainable": False},
        {"type": "batch_norm", "momentum": 0.9},
        {"type": "activation", "activation": "tanh"},
        {"type": "global_avg_pool"},
        {"type": "dropout", "rate": 0.25},
        {"type": "dense", "units": 2, "activation": {"type": "leaky_relu", "negative_slope": 0.3}},
    ]
    model = build_model(shaped)
    conv = model.get_layer("conv2d_1")
    assert conv.use_bias is False and conv.trainable is False
    assert type(conv.kernel_initializer).__name__ == "HeNormal"
    assert conv.kernel_regularizer.l2 == pytest.approx(0.5)
    assert model.get_layer("batch_norm_2").momentum == pytest.approx(0.9)
    assert model.get_layer("dropout_5").rate == pytest.approx(0.25)
    # A parametrized activation becomes its own layer after the linear one, and carries
    # the output name.
    assert model.get_layer("output").negative_slope == pytest.approx(0.3)
    assert model.get_layer("output_linear").activation.__name__ == "linear"
    assert model.output_shape == (None, 2)


def test_embedding_and_conv1d_stack():
    spec = {
        "name": "seq", "model": {
            "inputs": [{"name": "tokens", "shape": [12], "dtype": "int32"}],
            "layers": [
                {"type": "embedding", "input_dim": 50, "output_dim": 4},
                {"type": "conv1d", "filters": 5, "kernel_size": 3, "activation": "relu"},
                {"type": "max_pool1d"},
                {"type": "flatten"},
                {"type": "dense", "units": 1, "activation": "sigmoid"},
            ]},
        "training": {"loss": "binary_crossentropy"},
    }
    model = build_model(spec)
    assert model.inputs[0].dtype == "int32"
    assert model.output_shape == (None, 1)
    x = np.random.default_rng(0).integers(0, 50, size=(3, 12))
    assert model.predict(x, verbose=0).shape == (3, 1)


def test_build_accepts_paths(tmp_path, shaped):
    path = tmp_path / "s.yaml"
    path.write_text(kspec.to_yaml(kspec.load_spec(shaped)))
    assert build_model(str(path)).count_params() == build_model(shaped).count_params()


def test_public_entry_points_stay_functions_after_package_imports(shaped):
    """`kspec.build`, `kspec.tune` and `kspec.export` are plain functions; importing the
    packages that implement them (whose names differ) does not rebind them."""
    import importlib
    import inspect

    for module in ("kspec.compiler.layers", "kspec.search.run", "kspec.exporter.api"):
        importlib.import_module(module)
    for fn in (kspec.build, kspec.tune, kspec.export):
        assert inspect.isfunction(fn), fn
    assert kspec.build(shaped).output_shape == (None, 3)
