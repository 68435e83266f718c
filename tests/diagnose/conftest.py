"""Small data for the diagnostics tests (synthetic, generated here)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def table_data():
    """300 rows of 16 standard-normal features, 3 classes from the first two."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.8).astype("int64")
    return x, y


@pytest.fixture(scope="session")
def symmetric_images():
    """240 left-right symmetric 6x6 images; the label is which quarter is brightest."""
    rng = np.random.default_rng(2)
    half = rng.uniform(0, 1, size=(240, 6, 3, 1)).astype("float32")
    y = rng.integers(0, 2, 240)
    half[y == 1, :3] += 1.0  # class 1 is brighter at the top
    return np.concatenate([half, half[:, :, ::-1]], axis=2), y
