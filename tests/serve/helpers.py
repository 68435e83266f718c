"""Helpers of the serve tests: small exports, HTTP calls, a live ``kspec serve`` process."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90  # seconds for the server to import TensorFlow and load (loaded machine)


def digits_model(seed: int = 1):
    """An 8x8x1 -> 10 softmax MLP (the shape of the docs' `digits` model)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(16, activation="relu")(h)
    h = keras.layers.Dropout(0.3)(h)
    out = keras.layers.Dense(10, activation="softmax", name="digit")(h)
    return keras.Model(inp, out, name="digits")


def multi_model():
    """Two inputs (float image, int32 ids) and two outputs."""
    import keras

    keras.utils.set_random_seed(2)
    image = keras.Input((8, 8, 1), name="image")
    ids = keras.Input((3,), name="ids", dtype="int32")
    a = keras.layers.Flatten()(image)
    b = keras.layers.Flatten()(keras.layers.Embedding(20, 4)(ids))
    h = keras.layers.Dense(12, activation="relu")(keras.layers.Concatenate()([a, b]))
    kind = keras.layers.Dense(4, activation="softmax", name="kind")(h)
    size = keras.layers.Dense(1, name="size")(h)
    return keras.Model({"image": image, "ids": ids}, {"kind": kind, "size": size},
                       name="multi")


def digit_rows(n: int, seed: int = 0) -> np.ndarray:
    with np.load(ROOT / "kspec" / "datasets" / "digits.npz") as z:
        x = z["x"].astype("float32")
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)]


def multi_rows(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.normal(size=(n, 8, 8, 1)).astype("float32"),
            "ids": rng.integers(0, 20, size=(n, 3)).astype("int32")}


def export(model, out: Path, sample, version: int | None = None, **kwargs) -> Path:
    from kspec import export as kspec_export

    return kspec_export(model, out, sample=sample, version=version, samples=16, **kwargs).path


def signature_outputs(version_dir: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the SavedModel's serving_default returns in this process (the reference)."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def call(url: str, body=None, method: str | None = None, timeout: float = 30):
    """``(status, parsed JSON)`` of one HTTP request (a dict body is sent as JSON)."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(url, data=data,
                                 method=method or ("GET" if data is None else "POST"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Server:
    """``kspec serve`` in a subprocess; stopped with SIGTERM (killed if it hangs)."""

    def __init__(self, models_dir: Path, *args: str, log: Path) -> None:
        self.log = log
        cmd = [sys.executable, "-m", "kspec.cli", "serve", str(models_dir), "--port", "0", *args]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get(
            "PYTHONPATH", "")}
        self._stderr = open(log, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=env, text=True, cwd=ROOT)
        self.banner = self._read_banner()
        self.url = self.banner.split(" on ", 1)[1].split()[0]

    def _read_banner(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        lines = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if " on http://" in line:
                    return line
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"kspec serve did not start: {''.join(lines)}"
                           f"{self.log.read_text()}")

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log.read_text()
