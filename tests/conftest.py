"""Shared test set-up: quiet TensorFlow, a fresh Keras session per test, tiny data."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _clear_keras_session():
    """Free graphs after each test module so memory stays flat over the suite (once per
    module: clearing after every test costs ~0.4 s each)."""
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


@pytest.fixture
def tiny_classification():
    """120 rows, 4 features, 3 separable classes."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=120)
    x = rng.normal(size=(120, 4)).astype("float32") + y[:, None] * 2.0
    return x, y


@pytest.fixture
def tiny_spec():
    """A small valid spec as a dict (tests change copies of it)."""
    return {
        "kspec": 1,
        "name": "tiny",
        "seed": 1,
        "data": {"splits": {"validation": 0.2, "test": 0.2}},
        "model": {
            "inputs": [{"name": "features"}],
            "layers": [
                {"type": "dense", "units": 8, "activation": "relu"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ],
        },
        "training": {
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 16,
            "epochs": 2,
            "verbose": 0,
        },
    }
