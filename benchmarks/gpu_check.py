"""The GPU check: the convnet example and a small ResNet-style spec in float32,
mixed_float16 and mixed_float16 + XLA, each through kspec.fit and as the same model
written by hand in Keras with the same settings; samples/s and ratios.

Run it through ``benchmarks/gpu_check.sh`` (bounded by a timeout). Without a GPU it runs
the float32 rows on CPU and says which rows it skipped: float16 has no fast CPU kernels and
Keras turns XLA off on CPU-only machines unless forced, so those figures would not mean
what they mean on a GPU (``--all`` runs them anyway).

    python benchmarks/gpu_check.py [--epochs 3] [--rows N] [--all]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from epoch_timer import EpochTimer, steady  # noqa: E402

import kspec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESNET = {
    "name": "resnet_small", "seed": 0,
    "model": {
        "inputs": [{"name": "image", "shape": [32, 32, 3]}],
        "definitions": {"res_block": {"residual": True, "layers": [
            {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": "same",
             "use_bias": False},
            {"type": "batch_norm"},
            {"type": "activation", "activation": "relu"},
            {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": "same",
             "use_bias": False},
            {"type": "batch_norm"}]}},
        "blocks": [
            {"name": "stem", "inputs": "image", "layers": [
                {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": "same",
                 "activation": "relu"}]},
            {"name": "body", "inputs": "stem", "use": "res_block", "repeat": 3},
            {"name": "head", "inputs": "body", "layers": [
                {"type": "global_avg_pool"},
                {"type": "dense", "units": 10, "activation": "softmax"}]}],
        "outputs": [{"name": "digit", "block": "head"}]},
    "training": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                 "metrics": ["accuracy"], "batch_size": 128},
}
# The convnet example as it is, trained on all rows given (no splits, no early stopping).
COMMON = {"data.splits": {"validation": 0.0, "test": 0.0}, "training.verbose": 0,
          "training.shuffle": False, "training.callbacks": {"backup_and_restore": False}}


def hand_convnet():
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    out = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, out), 64


def hand_resnet():
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    for _ in range(3):
        y = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(x)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Activation("relu")(y)
        y = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization()(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, out), 128


MODELS = {"convnet": (ROOT / "specs" / "convnet.yaml", hand_convnet, (8, 8, 1)),
          "resnet_small": (RESNET, hand_resnet, (32, 32, 3))}
# Rows per model: enough for steady epochs of a few seconds (a GPU / the 2-core container).
ROWS = {"gpu": {"convnet": 50_000, "resnet_small": 50_000},
        "cpu": {"convnet": 16_384, "resnet_small": 1024}}
MODES = {"float32": ("float32", False), "mixed_float16": ("mixed_float16", False),
         "mixed_float16 + XLA": ("mixed_float16", True)}


def run_hand(make, x, y, precision, jit, epochs):
    keras.config.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model, batch = make()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit, steps_per_execution=8)
    finally:
        keras.config.set_dtype_policy("float32")
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer],
              shuffle=False)
    return len(x) / steady(timer.times), bool(model.jit_compile)


def run_kspec(spec, x, y, precision, jit, epochs, out):
    timer = EpochTimer()
    run = kspec.fit(spec, data=(x, y), out=out, epochs=epochs, callbacks=[timer],
                    overrides={**COMMON, "training.precision": precision,
                               "training.jit_compile": jit})
    return len(x) / steady(timer.times), bool(run.model.jit_compile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=None,
                        help="rows per model (default: 50000 on a GPU; on CPU 16384 for the "
                        "convnet, 1024 for the ResNet)")
    parser.add_argument("--all", action="store_true", help="run the GPU rows on CPU too")
    args = parser.parse_args()

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        where = (f"GPU: {details.get('device_name', gpus[0].name)}, compute capability "
                 f"{details.get('compute_capability')}, {len(gpus)} GPU(s)")
    else:
        where = f"no GPU: CPU only ({len(os.sched_getaffinity(0))} cores)"
    sizes = {n: args.rows or r for n, r in ROWS["gpu" if gpus else "cpu"].items()}
    print(f"gpu_check: {where}; tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"rows {sizes}, {args.epochs} epochs (samples/s over the epochs after the first)")
    modes = MODES if gpus or args.all else {"float32": MODES["float32"]}
    if not gpus and not args.all:
        print("SKIPPED (no GPU): mixed_float16 and mixed_float16 + XLA rows; they measure "
              "what a GPU does (run this script on a GPU, or --all to force them on CPU)")
    print(f"{'model':<14}{'mode':<22}{'hand samples/s':>16}{'kspec samples/s':>17}"
          f"{'kspec/hand':>12}{'vs float32 (kspec)':>20}{'  XLA hand/kspec'}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as out:
        for name, (spec, make, shape) in MODELS.items():
            x = rng.random((sizes[name], *shape), dtype=np.float32)
            y = rng.integers(0, 10, sizes[name])
            base = None
            for mode, (precision, jit) in modes.items():
                keras.backend.clear_session()
                hand, hand_xla = run_hand(make, x, y, precision, jit, args.epochs)
                keras.backend.clear_session()
                mine, kspec_xla = run_kspec(spec, x, y, precision, jit, args.epochs, out)
                base = base or mine
                print(f"{name:<14}{mode:<22}{hand:>16.0f}{mine:>17.0f}{mine / hand:>12.2f}"
                      f"{mine / base:>20.2f}  {hand_xla!s:>5}/{kspec_xla!s:<5}", flush=True)


if __name__ == "__main__":
    main()
