"""kspec.fit versus the same model written by hand in Keras, in one process.

Prints the ratio of training throughput (samples/s over the epochs after the first, so
tracing/compilation is excluded) and of model build time. A ratio >= 1.0 means kspec is at
least as fast as hand-written Keras.

    python benchmarks/bench_fit.py [--rows 50000] [--epochs 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from epoch_timer import EpochTimer, steady  # noqa: E402

import kspec  # noqa: E402
from kspec.train.compile import compile_model  # noqa: E402

FEATURES, CLASSES, BATCH = 64, 10, 128

SPEC = {
    "name": "bench_mlp",
    "seed": 0,
    "data": {"splits": {"validation": 0.0, "test": 0.0}},
    "model": {
        "inputs": [{"name": "features", "shape": [FEATURES]}],
        "layers": [
            {"type": "dense", "units": 256, "activation": "relu"},
            {"type": "dense", "units": 256, "activation": "relu"},
            {"type": "dense", "units": CLASSES, "activation": "softmax"},
        ],
    },
    "training": {
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "batch_size": BATCH,
        "verbose": 0,
        "callbacks": {"backup_and_restore": False},
    },
}


def hand_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(FEATURES,), name="features")
    x = keras.layers.Dense(256, activation="relu")(inputs)
    x = keras.layers.Dense(256, activation="relu")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, FEATURES)).astype("float32")
    y = (x[:, :CLASSES].argmax(axis=1)).astype("int64")

    spec = kspec.load_spec(SPEC)
    hand_tp, kspec_tp, hand_build, kspec_build = [], [], [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            keras.backend.clear_session()
            t = time.perf_counter()
            model = hand_model()
            hand_build.append(time.perf_counter() - t)
            timer = EpochTimer()
            model.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0, callbacks=[timer])
            hand_tp.append(args.rows / steady(timer.times))

            keras.backend.clear_session()
            t = time.perf_counter()
            compile_model(kspec.build(SPEC), spec)  # build + compile, as hand_model() does
            kspec_build.append(time.perf_counter() - t)
            keras.backend.clear_session()
            timer = EpochTimer()
            kspec.fit(SPEC, data=(x, y), out=out, epochs=args.epochs, callbacks=[timer])
            kspec_tp.append(args.rows / steady(timer.times))

    h, k = statistics.median(hand_tp), statistics.median(kspec_tp)
    hb, kb = statistics.median(hand_build), statistics.median(kspec_build)
    print(f"rows={args.rows} features={FEATURES} batch={BATCH} epochs={args.epochs} "
          f"repeats={args.repeats} keras={keras.__version__}")
    print(f"training throughput  hand-written Keras {h:10.0f} samples/s")
    print(f"training throughput  kspec.fit          {k:10.0f} samples/s")
    print(f"throughput ratio kspec/hand = {k / h:.3f}  (>= 1.0: kspec no slower)")
    print(f"build+compile time  hand {hb * 1000:.1f} ms  kspec {kb * 1000:.1f} ms  "
          f"ratio hand/kspec = {hb / kb:.3f}  (>= 1.0: kspec no slower)")


if __name__ == "__main__":
    main()
