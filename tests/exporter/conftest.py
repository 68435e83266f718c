"""Models shared by the export tests (built once per session: exports are the slow part)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _randomize_batch_norms(model, seed: int) -> None:
    """Give every batch norm non-trivial statistics (fresh ones are the identity map, which
    would make folding and inference-mode bugs invisible)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            layer.beta.assign(rng.normal(size=n).astype("float32"))
            layer.moving_mean.assign(rng.normal(size=n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype("float32"))


@pytest.fixture(scope="session")
def digits():
    """300 raw 8x8 digit images (values 0..16) and labels from the bundled dataset."""
    with np.load(ROOT / "kspec" / "datasets" / "digits.npz") as z:
        return z["x"][:300].astype("float32"), z["y"][:300].astype("int64")


@pytest.fixture(scope="session")
def rich_model(digits):
    """Normalization adapted on data, augmentation, conv+BN, dense+BN, dropout, softmax."""
    import keras

    x, _ = digits
    keras.utils.set_random_seed(1)
    norm = keras.layers.Normalization(name="normalize")
    norm.adapt(x)
    inp = keras.Input((8, 8, 1), name="image")
    h = norm(inp)
    h = keras.layers.RandomFlip("horizontal", name="flip")(h)
    h = keras.layers.RandomTranslation(0.2, 0.2, name="translate")(h)
    h = keras.layers.GaussianNoise(0.5, name="noise")(h)
    h = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="conv")(h)
    h = keras.layers.BatchNormalization(name="conv_bn")(h)
    h = keras.layers.Activation("relu", name="relu")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(16, name="hidden")(h)
    h = keras.layers.BatchNormalization(name="hidden_bn")(h)
    h = keras.layers.Activation("relu", name="relu2")(h)
    h = keras.layers.Dropout(0.5, name="dropout")(h)
    out = keras.layers.Dense(10, activation="softmax", name="digit")(h)
    model = keras.Model(inp, out, name="rich")
    _randomize_batch_norms(model, 0)
    return model


@pytest.fixture(scope="session")
def tiny_model():
    """The cheapest model to export (for tests about files and versions, not numerics)."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, name="hidden")(inp)
    h = keras.layers.Dropout(0.5, name="dropout")(h)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    return keras.Model(inp, out, name="tiny")


@pytest.fixture(scope="session")
def tiny_sample():
    return np.random.default_rng(4).normal(size=(16, 4)).astype("float32")


@pytest.fixture(scope="session")
def multi_model():
    """Two named inputs (float image, int32 ids) and two named outputs (class, value)."""
    import keras

    keras.utils.set_random_seed(2)
    image = keras.Input((8, 8, 1), name="image")
    ids = keras.Input((3,), name="ids", dtype="int32")
    a = keras.layers.Flatten()(image)
    b = keras.layers.Embedding(20, 4)(ids)
    b = keras.layers.Flatten()(b)
    h = keras.layers.Concatenate()([a, b])
    h = keras.layers.Dense(12, name="trunk")(h)
    h = keras.layers.BatchNormalization(name="trunk_bn")(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Dropout(0.3)(h)
    kind = keras.layers.Dense(4, activation="softmax", name="kind")(h)
    size = keras.layers.Dense(1, name="size")(h)
    model = keras.Model({"image": image, "ids": ids}, {"kind": kind, "size": size},
                        name="multi")
    _randomize_batch_norms(model, 1)
    return model


@pytest.fixture(scope="session")
def multi_sample():
    rng = np.random.default_rng(3)
    return {"image": rng.normal(size=(32, 8, 8, 1)).astype("float32"),
            "ids": rng.integers(0, 20, size=(32, 3)).astype("int32")}


RUN_SPEC = {
    "kspec": 1,
    "name": "digits_export",
    "seed": 5,
    "data": {
        "source": {"type": "bundled", "name": "digits"},
        "splits": {"validation": 0.1, "test": 0.2},
        "preprocessing": [{"type": "zscore", "per": "global"},
                          {"type": "whiten", "method": "zca"}],
        "augmentation": [{"type": "gaussian_noise", "stddev": 0.3}, {"type": "flip"}],
    },
    "model": {
        "inputs": [{"name": "image", "shape": [8, 8, 1]}],
        "layers": [
            {"type": "flatten"},
            {"type": "dense", "units": 24},
            {"type": "batch_norm"},
            {"type": "activation", "activation": "relu"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
    },
    "training": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                 "metrics": ["accuracy"], "batch_size": 64, "epochs": 1, "verbose": 0},
}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A real kspec run (1 epoch on the bundled digits) with fitted preprocessing."""
    import kspec

    return kspec.fit(RUN_SPEC, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture
def snapshot():
    """``snapshot(root)``: every file under ``root`` with its size, mtime and bytes' hash."""
    import hashlib

    def take(root: Path) -> dict[str, tuple[int, int, str]]:
        return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                           hashlib.sha1(p.read_bytes()).hexdigest())
                for p in sorted(root.rglob("*")) if p.is_file()}

    return take
