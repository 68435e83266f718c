"""Tiny specs and data for the component tests, and the train / save / load round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

N = 16  # rows: one batch
RNG = np.random.default_rng(0)
X_VEC = RNG.normal(size=(N, 4)).astype("float32")
X_IMG = RNG.normal(size=(N, 5, 5, 1)).astype("float32")
X_MAP = RNG.normal(size=(N, 4, 4, 2)).astype("float32")
Y_BIN = (X_VEC[:, 0] > 0).astype("float32")[:, None]
Y_INT = (np.arange(N) % 3).astype("int32")
Y_ONEHOT = np.eye(3, dtype="float32")[Y_INT]
Y_REG = (X_VEC @ np.array([1.0, -2.0, 0.5, 0.0], "float32"))[:, None] + 3.0
Y_SIGNED = 2.0 * Y_BIN - 1.0
Y_COUNTS = RNG.poisson(2.0, size=(N, 1)).astype("float32")
Y_MAP = RNG.normal(size=(N, 4, 4, 2)).astype("float32")
GROUPS = (np.arange(N) % 2).astype("int32")


def spec_dict(layers: list[dict], loss: Any, *, shape=(4,), optimizer: Any = "adam",
              metrics: Any = ()) -> dict:
    """A minimal stack spec on one input called ``x``."""
    return {
        "name": "component_test",
        "seed": 1,
        "model": {"inputs": [{"name": "x", "shape": list(shape)}], "layers": layers},
        "training": {"loss": loss, "optimizer": optimizer, "metrics": list(metrics),
                     "batch_size": N, "epochs": 1},
    }


# What a loss or metric with these tags needs: output layers, input, targets, and a loss.
RECIPES: dict[str, dict[str, Any]] = {
    "regression": dict(layers=[{"type": "dense", "units": 1}], x=X_VEC, y=Y_REG, loss="mse"),
    "binary": dict(layers=[{"type": "dense", "units": 1, "activation": "sigmoid"}], x=X_VEC,
                   y=Y_BIN, loss="binary_crossentropy"),
    "signed_labels": dict(layers=[{"type": "dense", "units": 1}], x=X_VEC, y=Y_SIGNED,
                          loss="hinge"),
    "sparse": dict(layers=[{"type": "dense", "units": 3, "activation": "softmax"}], x=X_VEC,
                   y=Y_INT, loss="sparse_categorical_crossentropy"),
    "onehot": dict(layers=[{"type": "dense", "units": 3, "activation": "softmax"}], x=X_VEC,
                   y=Y_ONEHOT, loss="categorical_crossentropy"),
    "distribution": dict(layers=[{"type": "dense", "units": 3, "activation": "softmax"}],
                         x=X_VEC, y=Y_ONEHOT, loss="kl_divergence"),
    "counts": dict(layers=[{"type": "dense", "units": 1, "activation": "softplus"}], x=X_VEC,
                   y=Y_COUNTS, loss="poisson"),
    "feature_map": dict(layers=[{"type": "conv2d", "filters": 2, "kernel_size": 1}],
                        x=X_MAP, y=Y_MAP, loss="content"),
    "packed_groups": dict(layers=[{"type": "dense", "units": 1, "activation": "sigmoid"}],
                          x=X_VEC, y=np.concatenate([Y_BIN, GROUPS[:, None]], 1).astype(
                              "float32"), loss={"type": "label_columns", "loss": "bce"}),
}
_ORDER = ("packed_groups", "feature_map", "counts", "distribution", "signed_labels", "onehot",
          "sparse", "binary", "regression")


def recipe_for(tags) -> dict[str, Any]:
    """The most specific recipe the tags ask for (regression when none matches)."""
    for key in _ORDER:
        if key in tags:
            return RECIPES[key]
    return RECIPES["regression"]


def roundtrip(spec: dict, x: np.ndarray, y: np.ndarray, tmp_path: Path, *, evaluate=False,
              eager=True):
    """Build and compile from the spec, train one step, save ``.keras``, load it with
    ``safe_mode=True``; assert identical predictions. Returns (model, loaded, logs).

    ``eager``: run the step without tracing a tf.function (~10x faster for one step; the
    custom components are also trained in graph mode in test_custom_classes.py).
    """
    import keras

    from kspec.compiler.model import build_model
    from kspec.train.compile import compile_model
    from kspec.validation import load_spec

    spec = load_spec(spec)
    model = build_model(spec)
    compile_model(model, spec)
    model.run_eagerly = eager
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_on_batch({"x": x}, y, return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "no weight changed"
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded({"x": x})), np.asarray(model({"x": x})),
                               rtol=1e-6, atol=1e-6)
    if evaluate:
        loaded.run_eagerly = eager
        a = model.test_on_batch({"x": x}, y, return_dict=True)
        b = loaded.test_on_batch({"x": x}, y, return_dict=True)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    return model, loaded, logs
