"""Spec factories for the diagnostics tests."""

from __future__ import annotations


def deep_spec(activation="relu", initializer="he_normal", depth=8, width=16, bias=None,
              features=16, **training) -> dict:
    """A stack of ``depth`` dense layers on ``features`` inputs, 3 classes."""
    hidden = {"type": "dense", "units": width, "activation": activation,
              "kernel_initializer": initializer}
    if bias is not None:
        hidden["bias_initializer"] = {"type": "constant", "value": bias}
    return {
        "name": "deep", "seed": 3,
        "data": {"splits": {"validation": 0.2, "test": 0.2}},
        "model": {"inputs": [{"name": "features", "shape": [features]}],
                  "layers": [dict(hidden) for _ in range(depth)]
                  + [{"type": "dense", "units": 3, "activation": "softmax"}]},
        "training": {"optimizer": {"type": "adam", "learning_rate": 0.01},
                     "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "batch_size": 32, "epochs": 1, "verbose": 0, **training},
    }
