"""Input-pipeline speed: kspec's ``to_dataset`` vs NumPy arrays vs a naive tf.data pipeline.

Feeds ~100k generated small images (uint8, like decoded image files) to the same tiny
model three ways and prints training steps per second, measured on the epochs after the
first (which includes tracing):

- ``kspec``: ``kspec.data.pipeline.to_dataset`` (shuffled index batches, one vectorized
  gather per batch in a parallel map, prefetch).
- ``numpy``: ``model.fit(x, y, batch_size=..., shuffle=True)``.
- ``naive``: ``from_tensor_slices((x, y)).shuffle(10_000).batch(b)``, no prefetch: the
  pipeline most tutorials start from.

The model is deliberately cheap (flatten + dense) so that the input pipeline, not the
model, dominates a step; with a larger model all three converge on the model's speed.

Run:  python benchmarks/bench_pipeline.py [--n 100000] [--size 16] [--batch 256]
          [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _model(shape, classes):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=shape, name="image")
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=False)
    return model


def run(n: int, size: int, channels: int, batch: int, epochs: int,
        repeats: int = 1) -> dict[str, float]:
    import numpy as np
    import tensorflow as tf
    from epoch_timer import EpochTimer

    from kspec.data.pipeline import to_dataset
    from kspec.data.split import Split

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    steps = -(-n // batch)

    def naive():
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10_000, seed=0).batch(batch)

    feeds = {
        "kspec": lambda m, cb: m.fit(to_dataset(Split({"image": x}, y), batch, shuffle=True,
                                                seed=0),
                                     epochs=epochs, verbose=0, callbacks=[cb], shuffle=False),
        "numpy": lambda m, cb: m.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True,
                                     verbose=0, callbacks=[cb]),
        "naive": lambda m, cb: m.fit(naive(), epochs=epochs, verbose=0, callbacks=[cb],
                                     shuffle=False),
    }
    times: dict[str, list[float]] = {name: [] for name in feeds}
    for r in range(repeats):  # interleaved, so a burst of load hits every variant alike
        for name, feed in feeds.items():
            timer = EpochTimer()
            feed(_model(x.shape[1:], 10), timer)
            times[name] += timer.times[1:] or timer.times
            print(f"  repeat {r + 1} {name:>6}: epochs "
                  + ", ".join(f"{t:.2f}s" for t in timer.times), flush=True)
    rates = {}
    for name, ts in times.items():
        ts = sorted(ts)
        rates[name] = steps / ts[len(ts) // 2]  # median epoch: other processes add noise
        print(f"{name:>6}: {rates[name]:8.1f} steps/s", flush=True)
    return rates


def pipeline_only(n: int, size: int, channels: int, batch: int, epochs: int) -> dict:
    """Batches/s of each pipeline alone (no model): what it can feed an accelerator."""
    import numpy as np
    import tensorflow as tf

    from kspec.data.pipeline import to_dataset
    from kspec.data.split import Split

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    steps = -(-n // batch)
    pipelines = {
        "kspec": to_dataset(Split({"image": x}, y), batch, shuffle=True, seed=0),
        "naive": tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10_000, seed=0)
        .batch(batch),
    }
    try:  # what model.fit(x, y) builds internally (a private Keras API; skip if it moves)
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

        pipelines["numpy"] = ArrayDataAdapter(x, y, batch_size=batch,
                                              shuffle=True).get_tf_dataset()
    except Exception:  # noqa: BLE001
        pass
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for epoch in range(epochs):  # round-robin, so a burst of load hits every pipeline alike
        for name, ds in pipelines.items():
            start = time.perf_counter()
            for _batch in ds:
                pass
            if epoch:  # the first pass traces the pipeline's functions
                times[name].append(time.perf_counter() - start)
    rates = {}
    for name, ts in times.items():
        rates[name] = steps / sorted(ts)[len(ts) // 2]
        print(f"{name:>6}: {rates[name]:8.1f} batches/s (no model)", flush=True)
    return rates


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="number of images")
    p.add_argument("--size", type=int, default=16, help="image height and width")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3, help="the first one is not timed")
    p.add_argument("--repeats", type=int, default=2, help="fresh models per variant")
    p.add_argument("--passes", type=int, default=10, help="timed passes, pipelines alone")
    a = p.parse_args(argv)
    print(f"{a.n} images {a.size}x{a.size}x{a.channels} uint8, batch {a.batch}, "
          f"{-(-a.n // a.batch)} steps/epoch")
    print("pipelines alone (iterating the batches, no model):")
    alone = pipeline_only(a.n, a.size, a.channels, a.batch, a.passes + 1)
    print("  " + "   ".join(f"kspec / {k}: {alone['kspec'] / v:.2f}x" for k, v in alone.items()
                            if k != "kspec"))
    print("model.fit (steps/s with a flatten + dense model):")
    rates = run(a.n, a.size, a.channels, a.batch, a.epochs, a.repeats)
    print(f"  kspec / numpy: {rates['kspec'] / rates['numpy']:.2f}x   "
          f"kspec / naive tf.data: {rates['kspec'] / rates['naive']:.2f}x")


if __name__ == "__main__":
    main()
