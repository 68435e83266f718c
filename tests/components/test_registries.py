"""Every registry entry builds from a spec, trains one step and survives a ``.keras``
save/load round trip in safe mode with identical predictions (timm-style: the tests grow
with the registries)."""

from __future__ import annotations

import numpy as np
import pytest

from kspec import registry
from tests.helpers import components as h

registry.load_builtins()
_BUILTIN = lambda reg: [e.name for e in reg.entries() if "user" not in e.tags]  # noqa: E731


def _eager(reg, name) -> bool:
    """Keras's own components train eagerly here (fast); kspec's classes in graph mode too,
    since a traced tf.function is where keras.ops code most often breaks."""
    params = {"num_classes": 3} if "num_classes" in (reg.get(name).accepted_params() or ()) \
        else {}
    built = reg.build({"type": name, **params}, "")
    return not type(built).__module__.startswith("kspec.")


@pytest.mark.parametrize("name", _BUILTIN(registry.ACTIVATIONS))
def test_activation(name, tmp_path):
    entry = registry.ACTIVATIONS.get(name)
    # Maxout halves the width (pieces=2); every other activation keeps it.
    init = ("lecun_normal" if "self_normalizing" in entry.tags else
            "he_normal" if "relu_like" in entry.tags else "glorot_uniform")
    layers = [{"type": "dense", "units": 4, "activation": name, "name": "hidden",
               "kernel_initializer": init},
              {"type": "dense", "units": 1, "name": "out"}]
    model, loaded, _ = h.roundtrip(h.spec_dict(layers, "mse"), h.X_VEC, h.Y_REG, tmp_path,
                                   eager=_eager(registry.ACTIVATIONS, name))
    hidden = loaded.get_layer("hidden")
    width = 2 if name == "maxout" else 4
    assert hidden.output.shape[-1] == width
    if "layer" in entry.tags:  # built as a layer after a linear dense layer
        assert loaded.get_layer("hidden_linear").get_config()["activation"] == "linear"


@pytest.mark.parametrize("name", _BUILTIN(registry.INITIALIZERS))
def test_initializer(name, tmp_path):
    import keras

    from kspec.kernels import kernel_2d

    entry = registry.INITIALIZERS.get(name)
    if "fixed_kernel" in entry.tags:
        layers = [{"type": "conv2d", "filters": 2, "kernel_size": 3, "name": "filter",
                   "kernel_initializer": name, "use_bias": False, "trainable": False},
                  {"type": "flatten"}, {"type": "dense", "units": 1}]
        spec, x = h.spec_dict(layers, "mse", shape=(5, 5, 1)), h.X_IMG
    else:  # on the output layer: constant initializers are fine there (no lint warning)
        layers = [{"type": "dense", "units": 2, "kernel_initializer": name, "name": "out"}]
        spec, x = h.spec_dict(layers, "mse"), h.X_VEC
    from kspec.compiler.model import build_model
    from kspec.validation import load_spec

    initial = build_model(load_spec(spec)).layers[1].get_weights()[0]
    model, loaded, _ = h.roundtrip(spec, x, np.repeat(h.Y_REG, 2, 1)[:, :1], tmp_path)
    if "fixed_kernel" in entry.tags:
        canonical = entry.name
        expected = kernel_2d(canonical, 3, 3)
        np.testing.assert_allclose(initial[:, :, 0, 0], expected, atol=1e-6)
        # Frozen: the filter is unchanged after the training step.
        np.testing.assert_allclose(loaded.get_layer("filter").get_weights()[0], initial,
                                   atol=1e-7)
    elif "constant" in entry.tags:
        assert np.unique(initial).size == 1
    elif name == "identity":
        np.testing.assert_allclose(initial, np.eye(4, 2), atol=1e-6)
    else:
        assert np.unique(initial).size == initial.size  # random: all different
    del keras


@pytest.mark.parametrize("name", _BUILTIN(registry.REGULARIZERS))
@pytest.mark.parametrize("where", ["kernel", "activity"])
def test_regularizer(name, where, tmp_path):
    if where == "activity" and "kernel_only" in registry.REGULARIZERS.get(name).tags:
        pytest.skip(f"{name} applies to kernels only")
    layers = [{"type": "dense", "units": 4, "activation": "relu", "kernel_initializer": "he_normal",
               f"{where}_regularizer": name},
              {"type": "dense", "units": 1}]
    model, loaded, _ = h.roundtrip(h.spec_dict(layers, "mse"), h.X_VEC, h.Y_REG, tmp_path)
    if where == "kernel":
        penalty = float(sum(loaded.losses))
        assert penalty > 0
        np.testing.assert_allclose(penalty, float(sum(model.losses)), rtol=1e-6)


@pytest.mark.parametrize("name", _BUILTIN(registry.LOSSES))
def test_loss(name, tmp_path):
    entry = registry.LOSSES.get(name)
    recipe = h.recipe_for(entry.tags)
    loss = name if "packed_groups" not in entry.tags else recipe["loss"]
    _, loaded, logs = h.roundtrip(h.spec_dict(recipe["layers"], loss, shape=recipe["x"].shape[1:]),
                                  recipe["x"], recipe["y"], tmp_path, evaluate=True,
                                  eager=_eager(registry.LOSSES, name))
    assert logs["loss"] != 0.0


@pytest.mark.parametrize("name", _BUILTIN(registry.METRICS))
def test_metric(name, tmp_path):
    entry = registry.METRICS.get(name)
    recipe = h.recipe_for(entry.tags)
    ref: object = name
    units = recipe["layers"][-1]["units"]
    if units > 1 and "num_classes" in (entry.accepted_params() or ()):
        ref = {"type": name, "num_classes": units}  # the linter insists they match
    spec = h.spec_dict(recipe["layers"], recipe["loss"], shape=recipe["x"].shape[1:],
                       metrics=[ref])
    _, _, logs = h.roundtrip(spec, recipe["x"], recipe["y"], tmp_path, evaluate=True,
                             eager=_eager(registry.METRICS, name))
    assert len(logs) == 2, logs  # the loss and this metric
    assert all(np.isfinite(v).all() for v in logs.values())


@pytest.mark.parametrize("name", _BUILTIN(registry.OPTIMIZERS))
def test_optimizer(name, tmp_path):
    optimizer = {"type": name, "learning_rate": 0.01, "clipnorm": 1.0}
    layers = [{"type": "dense", "units": 1}]
    model, loaded, _ = h.roundtrip(h.spec_dict(layers, "mse", optimizer=optimizer), h.X_VEC,
                                   h.Y_REG, tmp_path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert int(loaded.optimizer.iterations) == 1
    assert loaded.optimizer.clipnorm == 1.0


SCHEDULE_EXAMPLES = {
    "constant": ({"learning_rate": 0.05}, 0.05),
    "step": ({"boundaries": [10], "values": [0.1, 0.01]}, 0.1),
    "exponential": ({"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.5}, 0.05),
    # warm-up from 0.01 to 0.1 over 2 steps: half-way after one step
    "cosine": ({"initial_learning_rate": 0.01, "decay_steps": 10, "warmup_target": 0.1,
                "warmup_steps": 2}, 0.055),
    "cosine_restarts": ({"initial_learning_rate": 0.1, "first_decay_steps": 2}, 0.05),
    "inverse_time": ({"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 1.0}, 0.05),
    "polynomial": ({"initial_learning_rate": 0.1, "decay_steps": 2,
                    "end_learning_rate": 0.0}, 0.05),
}


@pytest.mark.parametrize("name", _BUILTIN(registry.SCHEDULES))
def test_schedule(name, tmp_path):
    assert name in SCHEDULE_EXAMPLES, f"add an example for the new schedule {name!r}"
    params, after_one_step = SCHEDULE_EXAMPLES[name]
    optimizer = {"type": "sgd", "learning_rate": {"type": name, **params}}
    layers = [{"type": "dense", "units": 1}]
    _, loaded, _ = h.roundtrip(h.spec_dict(layers, "mse", optimizer=optimizer), h.X_VEC,
                               h.Y_REG, tmp_path)
    # The loaded optimizer continues the schedule from step 1.
    np.testing.assert_allclose(float(loaded.optimizer.learning_rate), after_one_step,
                               rtol=1e-5)
