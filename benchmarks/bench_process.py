"""Whole-process speed: `kspec fit` / `tune` / `export` against the same job written by hand
in Keras (benchmarks/hand/*.py), each run as a separate process, the way a user runs it.

For every job the two commands alternate (A B A B ...) after one warm-up pair, and the script
prints, per pair, wall and CPU time (user + system of the child process) and peak RSS, then
the medians and their ratios (kspec / hand-written; <= 1.0 means kspec is no slower).

Jobs:
  mlp      the bundled digits (1,437 training rows), z-score fitted on train,
           [Dense(128) > BN > ReLU > Dropout(0.2)] x 2 > softmax, Adam, 20 epochs, batch 64
  convnet  20,000 generated 28x28 grey images from an NPZ file, a small convnet, 3 epochs
  tune     a random search of 6 trials (units x learning rate, 5 epochs each) with KerasTuner
  export   a SavedModel for TF Serving from a trained model, loaded back and checked

    python benchmarks/bench_process.py [--jobs mlp convnet tune export] [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
HAND = Path(__file__).resolve().parent / "hand"
DIGITS = ROOT / "kspec" / "datasets" / "digits.npz"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

MLP_SPEC = {
    "kspec": 1, "name": "process_mlp", "seed": 42,
    "data": {"source": {"type": "bundled", "name": "digits"},
             "splits": {"test": 0.2},
             "preprocessing": [{"type": "zscore"}]},
    "model": {"inputs": [{"name": "image", "shape": [8, 8, 1]}],
              "layers": [{"type": "flatten"},
                         *[layer for _ in range(2) for layer in (
                             {"type": "dense", "units": 128}, {"type": "batch_norm"},
                             {"type": "activation", "activation": "relu"},
                             {"type": "dropout", "rate": 0.2})],
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    "training": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                 "metrics": ["accuracy"], "epochs": 20, "batch_size": 64},
}

CONVNET_SPEC = {
    "kspec": 1, "name": "process_convnet", "seed": 42,
    "data": {"source": {"type": "npz", "path": "IMAGES"}, "splits": {"test": 0.1}},
    "model": {"inputs": [{"name": "image", "shape": [28, 28, 1]}],
              "layers": [{"type": "conv2d", "filters": 32, "kernel_size": 3,
                          "activation": "relu"},
                         {"type": "max_pool2d", "pool_size": 2},
                         {"type": "conv2d", "filters": 64, "kernel_size": 3,
                          "activation": "relu"},
                         {"type": "max_pool2d", "pool_size": 2},
                         {"type": "flatten"}, {"type": "dropout", "rate": 0.5},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    "training": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                 "metrics": ["accuracy"], "epochs": 3, "batch_size": 128},
}

TUNE_SPEC = {
    "kspec": 1, "name": "process_tune", "seed": 42,
    "data": {"source": {"type": "bundled", "name": "digits"},
             "splits": {"validation": 0.15, "test": 0.15},
             "preprocessing": [{"type": "min_max", "per": "global"}]},
    "model": {"inputs": [{"name": "image", "shape": [8, 8, 1]}],
              "layers": [{"type": "flatten"},
                         {"type": "dense", "units": {"$choice": [32, 64, 128]},
                          "activation": "relu"},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    "training": {"optimizer": {"type": "adam", "learning_rate": {
                     "$float": {"min": 1e-4, "max": 1e-2, "sampling": "log"}}},
                 "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                 "epochs": 5, "batch_size": 32},
    "search": {"tuner": "random", "max_trials": 6, "objective": "val_accuracy",
               "overwrite": True},
}


def make_images(path: Path, n: int = 20000, seed: int = 0) -> None:
    """``n`` 28x28 grey images of 10 classes (a bar at one of 10 angles, plus noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    yy, xx = np.mgrid[-13.5:14.5, -13.5:14.5]
    angle = y[:, None, None] * np.pi / 10 + rng.normal(0, 0.05, size=(n, 1, 1))
    dist = np.abs(xx[None] * np.sin(angle) - yy[None] * np.cos(angle))
    x = np.exp(-dist**2 / 4.0) + rng.normal(0, 0.3, size=(n, 28, 28))
    np.savez(path, x=x[..., None].astype("float32"), y=y.astype("int64"))


def run(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Run one command; its wall time, CPU time (user + system) and peak RSS in MiB."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        printed, errors = (f.read().decode(errors="replace") for f in (out, err))
    if status != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{errors[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss / 1024, "stdout": printed}


def accuracy(job: str, work: Path, printed: str) -> tuple[float | None, float | None]:
    """Test accuracy of the last kspec run (its record) and of the hand-written script (the
    line it prints), so that the timings compare the same result."""
    import json
    import re

    ours = None
    if job in ("mlp", "convnet"):
        (metrics,) = (work / "runs").glob("*/metrics.json")
        ours = json.loads(metrics.read_text())["test"]["accuracy"]
    elif job == "tune":
        (best,) = (work / "tuning").glob("*/best_metrics.json")
        ours = json.loads(best.read_text())["test"]["accuracy"]
    found = re.findall(r"test accuracy ([0-9.]+)", printed)
    return ours, (float(found[-1]) if found else None)


def _write(spec: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def setup(job: str, work: Path) -> tuple[list[str], list[str]]:
    """The kspec command and the hand-written one for ``job`` (run inside ``work``)."""
    kspec = str(BIN / "kspec")
    py = sys.executable
    if job == "mlp":
        spec = _write(MLP_SPEC, work / "mlp.yaml")
        return ([kspec, "fit", str(spec), "--out", "runs"],
                [py, str(HAND / "mlp_digits.py"), str(DIGITS), "hand"])
    if job == "convnet":
        images = work / "images.npz"
        make_images(images)
        spec = _write({**CONVNET_SPEC, "data": {**CONVNET_SPEC["data"], "source": {
            "type": "npz", "path": str(images)}}}, work / "convnet.yaml")
        return ([kspec, "fit", str(spec), "--out", "runs"],
                [py, str(HAND / "convnet_images.py"), str(images), "hand"])
    if job == "tune":
        spec = _write(TUNE_SPEC, work / "tune.yaml")
        return ([kspec, "tune", str(spec), "--out", "tuning"],
                [py, str(HAND / "tune_digits.py"), str(DIGITS), "hand_tuning"])
    if job == "export":
        # Each side exports the model it trained itself (job mlp), once trained here.
        spec = _write(MLP_SPEC, work / "mlp.yaml")
        run([kspec, "fit", str(spec), "--out", "trained", "--quiet"], work)
        run([py, str(HAND / "mlp_digits.py"), str(DIGITS), "."], work)
        (run_dir,) = (work / "trained").iterdir()
        return ([kspec, "export", str(run_dir), "--out", "models"],
                [py, str(HAND / "export_model.py"), str(work / "model.keras"), "models"])
    raise SystemExit(f"unknown job {job!r}")


def bench(job: str, pairs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench_process_{job}_") as tmp:
        work = Path(tmp)
        (work / "hand").mkdir()
        ours, theirs = setup(job, work)
        rows = []
        for i in range(pairs + 1):  # pair 0 warms the file caches and is not counted
            for folder in ("runs", "tuning", "models", "hand_tuning"):
                shutil.rmtree(work / folder, ignore_errors=True)
            a, b = run(ours, work), run(theirs, work)
            if i == pairs:
                acc = accuracy(job, work, b["stdout"])
            if i:
                rows.append((a, b))
                print(f"  {job:<8} pair {i}: kspec {a['wall']:6.2f} s wall {a['cpu']:6.2f} s "
                      f"CPU {a['rss']:6.0f} MiB | hand {b['wall']:6.2f} s wall "
                      f"{b['cpu']:6.2f} s CPU {b['rss']:6.0f} MiB | wall x"
                      f"{a['wall'] / b['wall']:.3f} CPU x{a['cpu'] / b['cpu']:.3f}", flush=True)
    med = {f"{side}_{k}": statistics.median(r[j][k] for r in rows)
           for j, side in enumerate(("kspec", "hand")) for k in ("wall", "cpu", "rss")}
    for k in ("wall", "cpu", "rss"):
        med[f"ratio_{k}"] = med[f"kspec_{k}"] / med[f"hand_{k}"]
    if acc[0] is not None:
        print(f"  {job:<8} test accuracy: kspec {acc[0]:.4f} | hand {acc[1]:.4f}", flush=True)
    return med


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", nargs="+", default=["mlp", "convnet", "tune", "export"],
                        choices=["mlp", "convnet", "tune", "export"])
    parser.add_argument("--pairs", type=int, default=5, help="measured pairs per job")
    args = parser.parse_args(argv)
    results = {}
    for job in args.jobs:
        print(f"{job}: {args.pairs} pairs after a warm-up pair", flush=True)
        results[job] = bench(job, args.pairs)
    print(f"\n{'job':<8} {'kspec wall':>11} {'hand wall':>10} {'ratio':>6}   {'kspec CPU':>10} "
          f"{'hand CPU':>9} {'ratio':>6}   {'kspec RSS':>10} {'hand RSS':>9} {'ratio':>6}")
    for job, m in results.items():
        print(f"{job:<8} {m['kspec_wall']:10.2f}s {m['hand_wall']:9.2f}s {m['ratio_wall']:6.3f}"
              f"   {m['kspec_cpu']:9.2f}s {m['hand_cpu']:8.2f}s {m['ratio_cpu']:6.3f}"
              f"   {m['kspec_rss']:7.0f}MiB {m['hand_rss']:6.0f}MiB {m['ratio_rss']:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
