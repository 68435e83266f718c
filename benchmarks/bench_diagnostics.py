"""What `training.diagnostics` costs: kspec.fit with it on vs off, vs hand-written Keras.

One process, variants interleaved over repeats. For each run, the median time per epoch
after the first (tracing excluded; the per-epoch probe and the update-ratio snapshot
included); per variant, the fastest run (on a shared machine, other processes only ever
slow a run down, so the fastest is the least disturbed). Prints the ratios: diagnostics on /
off (the overhead) and on / a hand-written Keras `model.fit` without any of it. A ratio of
1.05 means 5% slower.

    python benchmarks/bench_diagnostics.py [--rows 40000] [--epochs 4] [--repeats 5]
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
from kspec.train.diagnostics import Probe  # noqa: E402

FEATURES, CLASSES, BATCH, WIDTH, DEPTH = 64, 10, 128, 128, 4


def spec(diagnostics) -> dict:
    hidden = [{"type": "dense", "units": WIDTH, "activation": "relu",
               "kernel_initializer": "he_normal"} for _ in range(DEPTH)]
    return {
        "name": "bench_diag", "seed": 0,
        "data": {"splits": {"validation": 0.0, "test": 0.0}},
        "model": {"inputs": [{"name": "features", "shape": [FEATURES]}],
                  "layers": [*hidden, {"type": "dense", "units": CLASSES,
                                       "activation": "softmax"}]},
        "training": {"optimizer": {"type": "adam", "learning_rate": 0.001},
                     "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "batch_size": BATCH, "verbose": 0, "diagnostics": diagnostics,
                     "callbacks": {"backup_and_restore": False}},
    }


def hand_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(FEATURES,), name="features")
    x = inputs
    for _ in range(DEPTH):
        x = keras.layers.Dense(WIDTH, activation="relu", kernel_initializer="he_normal")(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(0.001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=8)  # kspec's default, so only diagnostics differ
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra- and inter-op threads (0: TensorFlow's default); "
                        "1 keeps a shared machine's contention from dominating the timings")
    args = parser.parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, FEATURES)).astype("float32")
    y = x[:, :CLASSES].argmax(axis=1).astype("int64")
    variants = {"hand-written Keras": None, "kspec, diagnostics off": False,
                "kspec, diagnostics every epoch": True,
                "kspec, diagnostics every 5 epochs": {"every": 5}}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            for name, diagnostics in variants.items():
                keras.backend.clear_session()
                timer = EpochTimer()
                if diagnostics is None:
                    hand_model().fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0,
                                     callbacks=[timer])
                else:
                    kspec.fit(spec(diagnostics), data=(x, y), out=out, epochs=args.epochs,
                              callbacks=[timer])
                times[name].append(steady(timer.times))

    per_epoch = {name: min(t) for name, t in times.items()}
    steps = -(-args.rows // BATCH)
    print(f"rows={args.rows} features={FEATURES} layers={DEPTH}x{WIDTH} batch={BATCH} "
          f"({steps} steps/epoch) epochs={args.epochs} repeats={args.repeats} "
          f"threads={args.threads or 'default'} keras={keras.__version__}")
    for name, t in per_epoch.items():
        each = " ".join(f"{v * 1000:.0f}" for v in times[name])
        print(f"{name:34} {t * 1000:8.1f} ms/epoch  (each run: {each})")
    off = per_epoch["kspec, diagnostics off"]
    hand = per_epoch["hand-written Keras"]
    for name in ("kspec, diagnostics every epoch", "kspec, diagnostics every 5 epochs"):
        print(f"{name:34} / diagnostics off = {per_epoch[name] / off:.3f}   "
              f"/ hand-written = {per_epoch[name] / hand:.3f}")
    print(f"{'kspec, diagnostics off':34} / hand-written = {off / hand:.3f}")

    # The fixed cost of one record: a forward/backward pass on the default probe (2 batches).
    model = hand_model()
    probe, rows = Probe(model), 2 * BATCH
    probe({"features": x[:rows]}, y[:rows])  # first call builds the probe model
    cost = []
    for _ in range(10):
        t = time.perf_counter()
        probe({"features": x[:rows]}, y[:rows])
        cost.append(time.perf_counter() - t)
    print(f"one probe pass ({rows} rows, {len(probe.layers)} layers): "
          f"{statistics.median(cost) * 1000:.1f} ms (median of 10), the fixed cost per record")


if __name__ == "__main__":
    main()
