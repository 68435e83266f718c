"""Tiny problems for search tests: a few hundred rows, one-layer models, one or two epochs."""

from __future__ import annotations

import copy

import numpy as np
import pytest


@pytest.fixture(scope="session")
def separable():
    """240 rows, 4 features, a linear binary label: a good learning rate learns it at once."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(240, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x, y


def search_spec(directory, **search) -> dict:
    """A spec whose learning rate is a choice where 0.05 is clearly better than 1e-5."""
    return copy.deepcopy({
        "name": "lr_search",
        "seed": 3,
        "data": {"splits": {"validation": 0.25}},
        "model": {"inputs": [{"name": "x", "shape": [4]}],
                  "layers": [{"type": "dense", "units": 4, "activation": "relu"},
                             {"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"optimizer": {"type": "adam",
                                   "learning_rate": {"$choice": [1e-5, 0.05]}},
                     "loss": "binary_crossentropy", "metrics": ["accuracy"],
                     "batch_size": 32, "epochs": 2, "verbose": 0},
        "search": {"objective": "val_loss", "directory": str(directory), **search},
    })


@pytest.fixture
def make_spec(tmp_path):
    return lambda **search: search_spec(tmp_path / "tuning", **search)
