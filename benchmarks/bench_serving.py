"""Serving latency: an exported SavedModel's ``serving_default`` signature vs ``model.predict``.

Builds two kspec models (a digits MLP and a small convnet with batch norm), exports each
with ``kspec.export`` (once plain, once with batch norm folded), then times one request at
batch size 1 and 256 (median of ``--repeats`` calls after warm-up):

- ``signature``: ``tf.saved_model.load(path).signatures["serving_default"](**inputs)``,
  what TensorFlow Serving and any TF client run (no Keras at all);
- ``folded``: the same with batch norm folded into the preceding conv/dense layer;
- ``predict``: ``model.predict(x)`` on the Keras model, what people call in notebooks; it
  builds a tf.data pipeline on every call, a fixed cost that dominates small requests
  (tensorflow/tensorflow#40261, #33340);
- ``on_batch``: ``model.predict_on_batch(x)``, Keras without that pipeline;
- ``call``: ``model(x, training=False)``, the eager Keras call.

Ratios are ``predict / signature`` (> 1: the exported signature is faster) and
``signature / folded`` (> 1: folding batch norm made the signature faster).

    python benchmarks/bench_serving.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import kspec  # noqa: E402
from kspec.compiler.model import build_model  # noqa: E402

MODELS = {
    "mlp": {
        "name": "bench_mlp",
        "model": {
            "inputs": [{"name": "image", "shape": [8, 8, 1]}],
            "layers": [
                {"type": "flatten"},
                {"type": "dense", "units": 256},
                {"type": "batch_norm"},
                {"type": "activation", "activation": "relu"},
                {"type": "dropout", "rate": 0.2},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
        },
    },
    "convnet": {
        "name": "bench_convnet",
        "model": {
            "inputs": [{"name": "image", "shape": [32, 32, 3]}],
            "layers": [
                {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": "same"},
                {"type": "batch_norm"},
                {"type": "activation", "activation": "relu"},
                {"type": "max_pool2d"},
                {"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": "same"},
                {"type": "batch_norm"},
                {"type": "activation", "activation": "relu"},
                {"type": "global_avg_pool"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
        },
    },
}
TRAINING = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"}


def _median_ms(fn, repeats: int) -> float:
    for _ in range(3):  # warm-up: tracing, first-call allocations
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench(name: str, spec: dict, repeats: int, out: str) -> list[tuple]:
    import tensorflow as tf

    model = build_model(kspec.load_spec({**spec, "training": TRAINING}))
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    sample = rng.normal(size=(64, *shape)).astype("float32")
    plain = kspec.export(model, out, name=name, sample=sample)
    folded = kspec.export(model, out, name=f"{name}_folded", sample=sample, fold_batchnorm=True)
    sig = tf.saved_model.load(str(plain.path)).signatures["serving_default"]
    sig_folded = tf.saved_model.load(str(folded.path)).signatures["serving_default"]
    rows = []
    for batch in (1, 256):
        x = rng.normal(size=(batch, *shape)).astype("float32")
        t = {
            "signature": _median_ms(lambda: sig(image=tf.constant(x))["output"].numpy(), repeats),
            "folded": _median_ms(lambda: sig_folded(image=tf.constant(x))["output"].numpy(),
                                 repeats),
            "predict": _median_ms(lambda: model.predict(x, verbose=0, batch_size=batch), repeats),
            "on_batch": _median_ms(lambda: model.predict_on_batch(x), repeats),
            "call": _median_ms(lambda: model([x], training=False).numpy(), repeats),
        }
        rows.append((name, batch, t))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    import tensorflow as tf

    print(f"tensorflow {tf.__version__}, {os.cpu_count()} CPU cores, "
          f"median of {args.repeats} calls")
    print(f"{'model':<8} {'batch':>5} {'signature':>10} {'folded':>9} {'predict':>9} "
          f"{'on_batch':>9} {'call':>8}   predict/signature  signature/folded")
    with tempfile.TemporaryDirectory() as out:
        for name, spec in MODELS.items():
            for model, batch, t in bench(name, spec, args.repeats, out):
                print(f"{model:<8} {batch:>5} {t['signature']:>8.2f}ms {t['folded']:>7.2f}ms "
                      f"{t['predict']:>7.2f}ms {t['on_batch']:>7.2f}ms {t['call']:>6.2f}ms   "
                      f"{t['predict'] / t['signature']:>15.1f}x "
                      f"{t['signature'] / t['folded']:>15.2f}x")


if __name__ == "__main__":
    main()
