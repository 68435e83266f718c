"""Streamed sources: peak memory as the data grows, and throughput against tf.data by hand.

Generates RGB images on disk twice, as a PNG folder (one sub-folder per class) and as
TFRecord shards of PNG-encoded ``tf.train.Example`` records, at 1x, 2x and 4x a size.
Every measurement runs in a child process of its own, so each peak RSS (``ru_maxrss``) is
that run's alone:

- ``kspec``: ``kspec.fit`` of a small convnet for ``--epochs`` epochs on the streamed
  source (``image_folder`` with ``stream: true``, or ``tfrecord``), with fitted min-max
  scaling (the statistics pass reads every image once before training);
- ``hand``: the same convnet in Keras on a hand-written tf.data pipeline of the same files
  (file names shuffled, interleaved TFRecord reads, parallel decode, prefetch; the same
  ``steps_per_execution`` as kspec, so the pipelines are what differs);
- ``memory`` (PNG only): ``kspec.fit`` with ``stream: false``, the folder decoded into
  memory: what streaming saves.

Each child also times its input pipeline alone (epochs iterated without a model, after a
warm-up epoch: the fastest, and the median CPU time) and the training epochs after the
first (the fastest, up to its last step, and the median CPU time). It prints peak RSS per
size (flat for the streamed runs, growing for the in-memory one) and the kspec / hand
throughput ratios: hand's time over kspec's, so above 1.0 means kspec is faster (or, for
CPU time, needs less CPU per image). CPU time counts every thread of the process and is
less disturbed than wall time by other processes on a shared machine.

Run:  python benchmarks/bench_stream.py [--images 2000] [--size 64] [--epochs 3]
          [--repeats 1] [--formats png,tfrecord] [--scales 1,2,4] [--threads 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = 10
SHARDS_PER_X = 8  # eight files at 1x: every size interleaves eight at once
BATCH = 64
STEPS_PER_EXECUTION = 8  # kspec's default (training.steps_per_execution)


# -- data on disk -------------------------------------------------------------------------------
def _png(rng, label: int, size: int) -> bytes:
    import numpy as np
    from PIL import Image

    # A class-coloured gradient with noise: compresses like a photo, not like flat colour.
    ramp = np.linspace(0, 120, size)[None, :, None]
    base = np.array([25 * label, 255 - 25 * label, 128])[None, None, :]
    pixels = np.clip(base * 0.5 + ramp + rng.normal(0, 20, (size, size, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype("uint8")).save(buf, "PNG")
    return buf.getvalue()


def generate(root: Path, images: int, size: int, scales: list[int]) -> dict:
    """``root/png/{k}x/cN/*.png`` and ``root/tfrecord/{k}x/shard-NNN.tfrecord`` for every
    size ``k`` (hard links into the files of the largest); returns their paths."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    largest = max(scales)
    total = images * largest
    shards = SHARDS_PER_X * largest
    full = root / "png" / "all"
    (root / "tfrecord" / "all").mkdir(parents=True, exist_ok=True)
    writers = [tf.io.TFRecordWriter(str(root / "tfrecord" / "all" / f"shard-{s:03d}.tfrecord"))
               for s in range(shards)]
    for i in range(total):
        label = i % CLASSES
        data = _png(rng, label, size)
        folder = full / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.png").write_bytes(data)
        example = tf.train.Example(features=tf.train.Features(feature={
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}))
        writers[i * shards // total].write(example.SerializeToString())
    for w in writers:
        w.close()
    out = {}
    for k in scales:
        folder = root / "png" / f"{k}x"
        for c in range(CLASSES):
            (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
            for f in sorted((full / f"c{c}").iterdir())[: images * k // CLASSES]:
                os.link(f, folder / f"c{c}" / f.name)
        records = root / "tfrecord" / f"{k}x"
        records.mkdir(parents=True, exist_ok=True)
        for s in range(SHARDS_PER_X * k):
            os.link(root / "tfrecord" / "all" / f"shard-{s:03d}.tfrecord",
                    records / f"shard-{s:03d}.tfrecord")
        out[k] = {"png": str(folder), "images": images * k // CLASSES * CLASSES,
                  "tfrecord": sorted(str(f) for f in records.iterdir())}
    return out


# -- the runs (each in a child process) ---------------------------------------------------------
def _layers():
    return [{"type": "conv2d", "filters": 16, "kernel_size": 3, "activation": "relu"},
            {"type": "max_pool2d", "pool_size": 2},
            {"type": "conv2d", "filters": 32, "kernel_size": 3, "activation": "relu"},
            {"type": "global_avg_pool"},
            {"type": "dense", "units": CLASSES, "activation": "softmax"}]


def _timer():
    import keras

    class Timer(keras.callbacks.Callback):
        """Seconds from each epoch's start to its last training step, so work at the end
        of an epoch (kspec's default backup of the run, CSV history) is left out."""

        def __init__(self):
            super().__init__()
            self.times, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = self.last = time.perf_counter()
            self.start_cpu = self.last_cpu = time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.last, self.last_cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(self.last - self.start)
            self.cpu.append(self.last_cpu - self.start_cpu)

        def result(self) -> dict:
            """The fastest epoch after the first, and the median CPU seconds of those."""
            later = self.times[1:] or self.times
            cpu = sorted(self.cpu[1:] or self.cpu)
            return {"epoch_s": min(later), "train_cpu_s": cpu[len(cpu) // 2]}

    return Timer()


def _alone(ds, passes: int = 3) -> tuple[float, float]:
    """The pipeline without a model, after a warm-up epoch: the fastest epoch's seconds,
    and the median CPU seconds of an epoch (all threads; less sensitive than wall time to
    other processes on a shared machine)."""
    for _ in ds:
        pass
    wall, cpu = [], []
    for _ in range(passes):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in ds:
            pass
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), sorted(cpu)[len(cpu) // 2]


def run_kspec(paths: dict, fmt: str, size: int, epochs: int, stream: bool) -> dict:
    import kspec
    from kspec.data.pipeline import to_dataset
    from kspec.train.loop import load_training_data

    if fmt == "png":
        source = {"type": "image_folder", "path": paths["png"], "image_size": [size, size],
                  "color_mode": "rgb", "stream": stream}
    else:
        pattern = os.path.join(os.path.dirname(paths["tfrecord"][0]), "shard-*.tfrecord")
        source = {"type": "tfrecord", "path": pattern, "label": "label",
                  "features": {"image": {"encoding": "png", "shape": [size, size, 3]}}}
    spec = {"name": "bench_stream", "seed": 0,
            "data": {"source": source, "preprocessing": [{"type": "min_max", "per": "global"}]},
            "model": {"inputs": [{"name": "image", "shape": [size, size, 3]}],
                      "layers": _layers()},
            "training": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                         "batch_size": BATCH, "epochs": epochs, "verbose": 0,
                         "steps_per_execution": STEPS_PER_EXECUTION}}
    start = time.perf_counter()
    loaded = load_training_data(kspec.load_spec(spec))
    prepare = time.perf_counter() - start
    alone, cpu = _alone(to_dataset(loaded.train, BATCH, shuffle=True, seed=0))
    del loaded
    timer = _timer()
    start = time.perf_counter()
    kspec.fit(spec, out=tempfile.mkdtemp(prefix="bench_stream_runs_"), callbacks=[timer])
    return {"prepare_s": prepare, "alone_s": alone, "cpu_s": cpu, **timer.result(),
            "fit_s": time.perf_counter() - start}


def _hand_dataset(paths: dict, fmt: str, size: int):
    """The tf.data pipeline one writes by hand for these files."""
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    if fmt == "png":
        names = tf.constant([f"c{c}" for c in range(CLASSES)])
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            names, tf.range(CLASSES, dtype=tf.int64)), -1)
        files = tf.data.Dataset.list_files(os.path.join(paths["png"], "*", "*.png"),
                                           shuffle=True, seed=0)

        def load(path):
            image = tf.io.decode_png(tf.io.read_file(path), channels=3)
            image.set_shape([size, size, 3])
            return image, table.lookup(tf.strings.split(path, os.sep)[-2])

        ds = files.map(load, num_parallel_calls=auto)
    else:
        spec = {"image": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64)}

        def parse(raw):
            ex = tf.io.parse_single_example(raw, spec)
            image = tf.io.decode_png(ex["image"], channels=3)
            image.set_shape([size, size, 3])
            return image, ex["label"]

        files = tf.data.Dataset.from_tensor_slices(paths["tfrecord"]).shuffle(
            len(paths["tfrecord"]), seed=0, reshuffle_each_iteration=True)
        ds = files.interleave(tf.data.TFRecordDataset, cycle_length=8, block_length=1,
                              num_parallel_calls=auto).shuffle(1024, seed=0)
        ds = ds.map(parse, num_parallel_calls=auto)
    return ds.batch(BATCH).prefetch(auto)


def run_hand(paths: dict, fmt: str, size: int, epochs: int) -> dict:
    import keras

    ds = _hand_dataset(paths, fmt, size)
    alone, cpu = _alone(ds)
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(CLASSES, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy",
                  steps_per_execution=STEPS_PER_EXECUTION)
    timer = _timer()
    start = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0, callbacks=[timer])
    return {"prepare_s": 0.0, "alone_s": alone, "cpu_s": cpu, **timer.result(),
            "fit_s": time.perf_counter() - start}


def child(args) -> None:
    import keras  # noqa: F401 - imported before any timing
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    paths = json.loads(args.paths)
    if args.child == "hand":
        out = run_hand(paths, args.format, args.size, args.epochs)
    else:
        out = run_kspec(paths, args.format, args.size, args.epochs, args.child == "kspec")
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def _spawn(kind: str, fmt: str, paths: dict, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--format", fmt, "--paths",
           json.dumps(paths), "--size", str(args.size), "--epochs", str(args.epochs),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{kind} {fmt} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _best(runs: list[dict]) -> dict:
    """Several runs of one kind: the fastest times (the least disturbed run on a shared
    machine), the median CPU time and the largest peak RSS."""
    out = {k: min(r[k] for r in runs) for k in ("prepare_s", "alone_s", "epoch_s", "fit_s")}
    for k in ("cpu_s", "train_cpu_s"):
        out[k] = sorted(r[k] for r in runs)[len(runs) // 2]
    out["rss_mb"] = max(r["rss_mb"] for r in runs)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="images at 1x")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--epochs", type=int, default=3,
                        help="training epochs; the fastest after the first is reported")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of kspec and hand each, interleaved; the fastest counts")
    parser.add_argument("--formats", default="png,tfrecord")
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra- and inter-op threads (0: TensorFlow's default)")
    parser.add_argument("--keep", default=None, help="generate the files here and keep them")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--format", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--paths", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return {}
    scales = [int(s) for s in args.scales.split(",")]
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        root = Path(args.keep or tmp)
        start = time.perf_counter()
        sizes = generate(root, args.images, args.size, scales)
        print(f"generated {max(scales) * args.images} {args.size}x{args.size} RGB images as "
              f"PNG files and TFRecords in {time.perf_counter() - start:.1f}s", flush=True)
        results: dict = {}
        for fmt in formats:
            for k in scales:
                runs: dict[str, list] = {"kspec": [], "hand": []}
                for _ in range(args.repeats):  # interleaved: both see the same load
                    for kind in runs:
                        runs[kind].append(_spawn(kind, fmt, sizes[k], args))
                if fmt == "png":
                    runs["memory"] = [_spawn("memory", fmt, sizes[k], args)]
                for kind, rs in runs.items():
                    r = results[(fmt, kind, k)] = _best(rs)
                    n = sizes[k]["images"]
                    print(f"{fmt:8s} {kind:6s} {k}x ({n:5d} images): peak RSS "
                          f"{r['rss_mb']:5.0f} MB  prepare {r['prepare_s']:4.1f}s  pipeline "
                          f"alone {n / r['alone_s']:6.0f} img/s, {1e6 * r['cpu_s'] / n:4.0f} "
                          f"CPU-us/img  training {n / r['epoch_s']:5.0f} img/s, "
                          f"{1e6 * r['train_cpu_s'] / n:4.0f} CPU-us/img", flush=True)
        print()
        for fmt in formats:
            for kind in ("kspec", "memory"):
                if (fmt, kind, scales[0]) not in results:
                    continue
                rss = [results[(fmt, kind, k)]["rss_mb"] for k in scales]
                label = "streamed" if kind == "kspec" else "in memory"
                print(f"{fmt} {label} peak RSS at " + ", ".join(f"{k}x" for k in scales) +
                      ": " + ", ".join(f"{v:.0f} MB" for v in rss) +
                      f" (growth {rss[-1] - rss[0]:+.0f} MB)")
            for k in scales:
                a, b = results[(fmt, "kspec", k)], results[(fmt, "hand", k)]
                print(f"{fmt} {k}x kspec / hand throughput: pipeline alone "
                      f"{b['alone_s'] / a['alone_s']:.2f}x (CPU per image "
                      f"{b['cpu_s'] / a['cpu_s']:.2f}x), training epoch "
                      f"{b['epoch_s'] / a['epoch_s']:.2f}x (CPU per image "
                      f"{b['train_cpu_s'] / a['train_cpu_s']:.2f}x)")
    return results


if __name__ == "__main__":
    main()
