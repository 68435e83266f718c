"""Runs in a fresh process with two logical CPU devices (TensorFlow fixes its devices when
it starts, so the test suite's own process cannot): MirroredStrategy against one device,
resume and export under it, and every example spec under mixed_bfloat16 on two replicas.

Usage: ``python tests/train/scale_child.py OUT_DIR``; prints one JSON object per line.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import numpy as np  # noqa: E402

import kspec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MIRRORED = {"training.distribution": {"strategy": "mirrored", "devices": 2}}


def emit(**record) -> None:
    print(json.dumps(record, default=str), flush=True)


def tiny_data(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype("int64")
    return x, y


TINY = {"name": "same_losses", "seed": 4, "data": {"splits": {"validation": 0.25}},
        "model": {"inputs": [{"name": "x", "shape": [6]}],
                  "layers": [{"type": "dense", "units": 16, "activation": "tanh"},
                             {"type": "dense", "units": 2, "activation": "softmax"}]},
        "training": {"optimizer": {"type": "sgd", "learning_rate": 0.1},
                     "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "batch_size": 32, "epochs": 4, "verbose": 0}}


def same_losses(out: Path) -> None:
    """No dropout or batch norm: the mirrored run must match the one-device run, exactly
    in the same order (shuffle: false), statistically when shuffled (see the test)."""
    for shuffle in (False, True):
        spec = {**TINY, "training": {**TINY["training"], "shuffle": shuffle}}
        one = kspec.fit(spec, data=tiny_data(), out=out)
        two = kspec.fit(spec, data=tiny_data(), out=out, overrides=MIRRORED)
        meta = json.loads((two.run_dir / "meta.json").read_text())["compute"]
        emit(kind="same_losses", shuffle=shuffle, one=one.history, two=two.history,
             compute=meta, summary=two.summary())


class Crash(Exception):
    pass


def resume_and_export(out: Path) -> None:
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # after two finished epochs
                raise Crash("simulated crash")

    spec = {**TINY, "name": "mirrored_resume"}
    try:
        kspec.fit(spec, data=tiny_data(), out=out, overrides=MIRRORED, callbacks=[Stop()])
        raise AssertionError("the crash did not happen")
    except Crash:
        pass
    (run_dir,) = [p for p in out.iterdir() if p.name.startswith("mirrored_resume")]
    resumed = kspec.fit(None, data=tiny_data(), out=out, resume=run_dir)
    rows = (run_dir / "history.csv").read_text().strip().splitlines()
    exported = kspec.export(resumed, out=out / "models")
    emit(kind="resume", epochs=[int(r.split(",")[0]) for r in rows[1:]],
         status=json.loads((run_dir / "meta.json").read_text())["status"],
         replicas=json.loads((run_dir / "meta.json").read_text())["compute"]["replicas"],
         parity=exported.check.summary(), passed=exported.check.passed,
         # The optimizer built to load the backup lives in the strategy, as in training.
         optimizer_kinds=sorted({type(v.value).__name__
                                 for v in resumed.model.optimizer.variables}))


def _base_runs(spec) -> list[str]:
    bases = [spec.model.base] + [b.base for b in spec.model.blocks]
    return [b.run for b in bases if b is not None and b.run and "/" not in b.run
            and not b.run.endswith(".keras")]


def every_example(out: Path) -> None:
    """Each example spec under mixed_bfloat16 on two replicas for two steps, exported."""
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    overrides = {**MIRRORED, "training.precision": "mixed_bfloat16"}
    os.chdir(ROOT)
    for path in specs:
        record = {"kind": "spec", "spec": path.stem}
        try:
            spec = kspec.load_spec(path)
            try:
                run = kspec.fit(path, out=out, epochs=1, steps_per_epoch=2, verbose=0,
                                overrides=overrides)
            except kspec.SpecError as e:
                if e.path != "data.categorical":
                    raise
                # String inputs cannot train on several replicas (keras-team/keras#21172):
                # refused before training; the spec still trains in mixed precision.
                record["mirrored_refused"] = str(e)
                run = kspec.fit(path, out=out, epochs=1, steps_per_epoch=2, verbose=0,
                                overrides={"training.precision": "mixed_bfloat16"})
            compute = json.loads((run.run_dir / "meta.json").read_text())["compute"]
            losses = [v for k, v in run.history.items() if k.endswith("loss")]
            exported = kspec.export(run, out=out / "models", samples=32)
            record.update(ok=True, compute=compute, name=spec.name,
                          finite=bool(losses and all(np.isfinite(v).all() for v in losses)),
                          parity=exported.check.summary(), passed=exported.check.passed,
                          signature=exported.signature)
        except Exception as e:  # noqa: BLE001 - reported per spec to the test
            record.update(ok=False, error=f"{type(e).__name__}: {e}",
                          trace=traceback.format_exc()[-3000:])
        emit(**record)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    parts = sys.argv[2:] or ["same_losses", "resume", "examples"]
    if "same_losses" in parts:
        same_losses(out / "same")
    if "resume" in parts:
        resume_and_export(out / "resume")
    if "examples" in parts:
        every_example(out / "examples")
    emit(kind="done")
