"""Scale settings on CPU: one device vs MirroredStrategy over two logical CPU devices, and
float32 vs mixed_bfloat16 vs XLA, each through kspec.fit and written by hand in Keras.

Every configuration trains the same MLP on the same generated rows, in one process, with
the CPU split into two logical devices at start (TensorFlow allows that only before it
starts). It prints samples/s (epochs after the first: tracing and XLA compilation excluded,
median over repeats), each configuration's ratio to float32 on one device, and kspec's
ratio to the hand-written model of the same configuration.

    python benchmarks/bench_distribute.py [--rows 20000] [--epochs 3] [--repeats 2]

On CPU, logical devices share the same cores: mirrored measures the strategy's overhead,
not a speed-up; bfloat16 depends on the CPU's AMX/AVX512-BF16 support.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402
import numpy as np  # noqa: E402
from epoch_timer import EpochTimer, steady  # noqa: E402

import kspec  # noqa: E402

FEATURES, CLASSES, BATCH, WIDTH = 64, 10, 256, 512

SPEC = {
    "name": "bench_distribute", "seed": 0,
    "data": {"splits": {"validation": 0.0, "test": 0.0}},
    "model": {"inputs": [{"name": "features", "shape": [FEATURES]}],
              "layers": [{"type": "dense", "units": WIDTH, "activation": "relu"},
                         {"type": "dense", "units": WIDTH, "activation": "relu"},
                         {"type": "dense", "units": CLASSES, "activation": "softmax"}]},
    "training": {"optimizer": {"type": "adam", "learning_rate": 0.001},
                 "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                 "batch_size": BATCH, "verbose": 0, "shuffle": False,
                 "callbacks": {"backup_and_restore": False}},
}

CONFIGS = {  # name: (spec overrides, precision, jit_compile, mirrored)
    "float32, one device": ({}, "float32", False, False),
    "float32, mirrored x2": ({"training.distribution": {"devices": 2}}, "float32", False,
                             True),
    "mixed_bfloat16": ({"training.precision": "mixed_bfloat16"}, "mixed_bfloat16", False,
                       False),
    "float32 + XLA": ({"training.jit_compile": True}, "float32", True, False),
    "mixed_bfloat16 + XLA": ({"training.precision": "mixed_bfloat16",
                              "training.jit_compile": True}, "mixed_bfloat16", True, False),
}


def hand_fit(x, y, precision, jit, mirrored, epochs):
    """The same job written by hand: policy, float32 output layer, strategy, XLA."""
    keras.config.set_dtype_policy(precision)
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if mirrored
                else tf.distribute.get_strategy())
    try:
        with strategy.scope():
            keras.utils.set_random_seed(0)
            inputs = keras.Input(shape=(FEATURES,), name="features")
            h = keras.layers.Dense(WIDTH, activation="relu")(inputs)
            h = keras.layers.Dense(WIDTH, activation="relu")(h)
            out = keras.layers.Dense(CLASSES, activation="softmax", dtype="float32")(h)
            model = keras.Model(inputs, out)
            # Several steps per call fail on several replicas (keras-team/keras#19246).
            model.compile(optimizer=keras.optimizers.Adam(0.001),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          jit_compile=jit, steps_per_execution=1 if mirrored else 8)
    finally:
        keras.config.set_dtype_policy("float32")
    timer = EpochTimer()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer],
              shuffle=False)
    return timer.times


def kspec_fit(x, y, overrides, epochs, out):
    timer = EpochTimer()
    kspec.fit(SPEC, data=(x, y), out=out, epochs=epochs, callbacks=[timer],
              overrides=overrides)
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, FEATURES)).astype("float32")
    y = x[:, :CLASSES].argmax(axis=1).astype("int64")
    results = {name: {"hand": [], "kspec": []} for name in CONFIGS}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):  # interleaved: load changes hit every configuration
            for name, (overrides, precision, jit, mirrored) in CONFIGS.items():
                keras.backend.clear_session()
                hand = hand_fit(x, y, precision, jit, mirrored, args.epochs)
                results[name]["hand"].append(args.rows / steady(hand))
                keras.backend.clear_session()
                ours = kspec_fit(x, y, overrides, args.epochs, out)
                results[name]["kspec"].append(args.rows / steady(ours))
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    base = med["float32, one device"]
    print(f"rows={args.rows} features={FEATURES} MLP {WIDTH}-{WIDTH}-{CLASSES} batch={BATCH} "
          f"epochs={args.epochs} repeats={args.repeats} cores={len(os.sched_getaffinity(0))} "
          f"tensorflow={tf.__version__} keras={keras.__version__}")
    print(f"{'configuration':<24}{'hand samples/s':>16}{'kspec samples/s':>17}"
          f"{'vs float32 (hand)':>19}{'vs float32 (kspec)':>20}{'kspec/hand':>12}")
    for name, m in med.items():
        print(f"{name:<24}{m['hand']:>16.0f}{m['kspec']:>17.0f}"
              f"{m['hand'] / base['hand']:>19.2f}{m['kspec'] / base['kspec']:>20.2f}"
              f"{m['kspec'] / m['hand']:>12.2f}")


if __name__ == "__main__":
    main()
