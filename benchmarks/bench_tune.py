"""Overhead of ``kspec.tune`` per trial over a hand-written KerasTuner ``build(hp)``.

Both search the same space (units, activation, dropout rate, log-scale learning rate) of the
same MLP on the bundled digits with the same random-search oracle, seed, epochs and batch
size, on the same train/validation arrays::

    python benchmarks/bench_tune.py                  # 6 trials x 2 epochs, 2 repeats
    python benchmarks/bench_tune.py --trials 10 --epochs 3 --repeats 3

It prints, for each variant, the median over repeats of the seconds per trial (the time
inside ``run_trial``: build, compile, fit, checkpoint) and of the whole search (kspec adds
spec validation, the trial table, the plot, the best spec and the best model), with the
process CPU time beside the wall time (CPU time is steadier on a shared machine), and the
ratios kspec / hand-written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

UNITS, ACTIVATIONS = [32, 64, 128], ["relu", "tanh"]


def digits():
    """The bundled digits, split 80/20 once (the same arrays for both variants)."""
    import numpy as np

    from kspec.data.datasets import load_bundled

    arrays = load_bundled("digits", "data.source.name")
    x, y = arrays["x"].astype("float32"), arrays["y"]
    index = np.random.default_rng(0).permutation(len(x))
    cut = int(len(x) * 0.8)
    return (x[index[:cut]], y[index[:cut]]), (x[index[cut:]], y[index[cut:]])


def hand_written(train, val, trials: int, epochs: int, seed: int, directory: str):
    """The KerasTuner idiom: a build(hp) function and tuner.search on arrays."""
    import keras
    import keras_tuner as kt

    def build(hp):
        inputs = keras.Input(shape=train[0].shape[1:], name="image")
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(hp.Choice("units", UNITS),
                               activation=hp.Choice("activation", ACTIVATIONS))(x)
        x = keras.layers.Dropout(hp.Float("rate", 0.0, 0.4, step=0.1))(x)
        outputs = keras.layers.Dense(10, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
        model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    seconds = []

    class Timed(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super().run_trial(trial, *args, **kwargs)
            finally:
                seconds.append(time.perf_counter() - start)

    tuner = Timed(build, objective="val_accuracy", max_trials=trials, seed=seed,
                  directory=directory, project_name="hand", overwrite=True)
    tuner.search(*train, validation_data=val, epochs=epochs, batch_size=32, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0].score
    return seconds, best


def with_kspec(train, val, trials: int, epochs: int, seed: int, directory: str):
    """The same space written in a spec, searched by kspec.tune."""
    import kspec

    spec = {
        "name": "kspec", "seed": seed,
        "model": {"inputs": [{"name": "image", "shape": list(train[0].shape[1:])}],
                  "layers": [
                      {"type": "flatten"},
                      {"type": "dense", "units": {"$choice": UNITS},
                       "activation": {"$choice": ACTIVATIONS}},
                      {"type": "dropout", "rate": {"$float": {"min": 0.0, "max": 0.4,
                                                              "step": 0.1}}},
                      {"type": "dense", "units": 10, "activation": "softmax"}]},
        "training": {"optimizer": {"type": "adam", "learning_rate": {
            "$float": {"min": 1e-4, "max": 1e-2, "sampling": "log"}}},
            "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
            "batch_size": 32, "epochs": epochs, "verbose": 0,
            "callbacks": {"backup_and_restore": False}},
        "search": {"tuner": "random", "objective": "val_accuracy", "max_trials": trials,
                   "seed": seed, "directory": directory, "overwrite": True},
    }
    result = kspec.tune(spec, data={"train": train, "validation": val}, verbose=0)
    return [r.seconds for r in result.trials], result.best.score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    train, val = digits()
    variants = {"hand-written KerasTuner": hand_written, "kspec.tune": with_kspec}
    results: dict[str, dict[str, list[float]]] = {name: {"trial": [], "total": [], "cpu": [],
                                                         "best": []} for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for fn in variants.values():  # warm-up: imports, first graph tracing
            fn(train, val, 1, 1, args.seed, os.path.join(tmp, "warmup"))
        for repeat in range(args.repeats):
            for name, fn in variants.items():  # interleaved, so load drifts hit both
                wall, cpu = time.perf_counter(), time.process_time()
                per_trial, best = fn(train, val, args.trials, args.epochs, args.seed,
                                     os.path.join(tmp, f"r{repeat}"))
                r = results[name]
                r["total"].append(time.perf_counter() - wall)
                r["cpu"].append(time.process_time() - cpu)
                r["trial"].append(statistics.median(per_trial))
                r["best"].append(best)

    med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}
    print(f"{args.trials} trials x {args.epochs} epochs, median of {args.repeats} repeats, "
          f"digits {len(train[0])}/{len(val[0])} rows")
    print(f"{'variant':<26}{'s/trial':>10}{'search s':>10}{'CPU s':>10}{'best val_acc':>14}")
    for name, m in med.items():
        print(f"{name:<26}{m['trial']:>10.2f}{m['total']:>10.2f}{m['cpu']:>10.2f}"
              f"{m['best']:>14.4f}")
    hand, ks = med["hand-written KerasTuner"], med["kspec.tune"]
    print(f"ratio kspec / hand-written: per trial {ks['trial'] / hand['trial']:.2f}x, "
          f"whole search {ks['total'] / hand['total']:.2f}x (wall), "
          f"{ks['cpu'] / hand['cpu']:.2f}x (CPU)")


if __name__ == "__main__":
    main()
