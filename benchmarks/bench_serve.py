"""Load test of ``kspec serve``: concurrent clients over TF Serving's REST API on 127.0.0.1.

Exports two kspec models (the digits MLP and the 32x32x3 convnet of ``bench_serving.py``)
into a temporary MODELS_DIR, starts ``kspec serve`` in a subprocess on a free 127.0.0.1
port, and has ``--clients`` concurrent clients (keep-alive connections) send
``--requests`` predict requests of one row each (row format, ``{"instances": [row]}``),
for each model:

- ``batching``: the server batches concurrent requests (default options);
- ``no batching``: ``--no-batching``, one signature call per request;
- ``switch``: batching, and a new version folder is published (atomically, as ``kspec
  export`` does) while the requests run; the server loads it and switches over.

It prints requests/s, p50/p99 latency and the number of failed requests (which must be 0,
including during the switch), and compares with calling the SavedModel's signature in
this process, one row per call, with no HTTP (``in-process``). Ratios: ``batching / no
batching`` (> 1: server-side batching pays) and ``HTTP / in-process``.

Every run is bounded: ``--requests`` per run, and ``--time-limit`` seconds at most per
run (requests not sent by then are counted as not sent, never as successes).

    python benchmarks/bench_serve.py [--clients 16] [--requests 2000] [--serve-args ARGS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # load tests talk to this machine only
# The same two models as bench_serving.py (which times the signature in-process).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import MODELS, TRAINING  # noqa: E402


def export_models(out: Path) -> dict[str, np.ndarray]:
    """Export both models; return one request row per model."""
    import kspec
    from kspec.compiler.model import build_model

    rows = {}
    rng = np.random.default_rng(0)
    for name, spec in MODELS.items():
        model = build_model(kspec.load_spec({**spec, "training": TRAINING}))
        shape = tuple(model.inputs[0].shape[1:])
        sample = rng.normal(size=(32, *shape)).astype("float32")
        kspec.export(model, out, name=name, sample=sample)
        rows[name] = rng.normal(size=shape).astype("float32")
    return rows


class Server:
    def __init__(self, models_dir: Path, *args: str) -> None:
        cmd = [sys.executable, "-m", "kspec.cli", "serve", str(models_dir), "--host", HOST,
               "--port", "0", "--poll-seconds", "0.2", "--log-level", "warning", *args]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()  # the banner, once the models are loaded
        if " on http://" not in line:
            self.stop()
            raise RuntimeError(f"kspec serve did not start: {line!r}")
        self.port = int(line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _request(reader, writer, method: str, path: str, body: bytes = b""):
    """One HTTP/1.1 request on a keep-alive connection (a minimal client, so that the load
    generator costs the shared CPUs as little as possible)."""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json"
                 f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


async def load(port: int, model: str, row: np.ndarray, clients: int, requests: int,
               time_limit: float, during=None) -> dict:
    """``requests`` predict requests from ``clients`` connections; ``during(progress)`` runs
    alongside (the version switch)."""
    body = json.dumps({"instances": [row.tolist()]}).encode()
    path = f"/v1/models/{model}:predict"
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    deadline = time.monotonic() + time_limit

    async def client() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while sent < requests and time.monotonic() < deadline:
                sent += 1
                start = time.perf_counter()
                try:
                    status, answer = await _request(reader, writer, "POST", path, body)
                except (OSError, asyncio.IncompleteReadError) as e:
                    errors.append(repr(e))
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                latencies.append(time.perf_counter() - start)
                if status != 200 or b'"predictions"' not in answer:
                    errors.append(f"{status} {answer[:200]!r}")
        finally:
            writer.close()

    side = asyncio.ensure_future(during(lambda: len(latencies))) if during else None
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    switch = await side if side else None
    done = len(latencies)
    ms = sorted(1000 * t for t in latencies) or [float("nan")]
    return {"rps": done / wall, "p50": ms[len(ms) // 2], "p99": ms[int(0.99 * (len(ms) - 1))],
            "errors": len(errors), "done": done, "not_sent": requests - sent,
            "first_error": errors[0] if errors else "", "switch": switch}


def in_process(version_dir: Path, row: np.ndarray, calls: int) -> dict:
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    x = row[None]
    for _ in range(20):
        fn(image=tf.constant(x))
    times = []
    start = time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        {k: v.numpy() for k, v in fn(image=tf.constant(x)).items()}
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    ms = sorted(1000 * t for t in times)
    return {"rps": calls / wall, "p50": ms[len(ms) // 2], "p99": ms[int(0.99 * (len(ms) - 1))],
            "errors": 0, "done": calls, "not_sent": 0}


def switcher(port: int, models_dir: Path, model: str, after: int):
    """Publish version 2 (a copy of version 1, renamed into place as kspec publishes) once
    ``after`` requests are done; report when the server had switched."""

    async def run(progress) -> str:
        while progress() < after:
            await asyncio.sleep(0.005)
        at = progress()
        tmp = models_dir / model / ".tmp-kspec-bench"
        shutil.copytree(models_dir / model / "1", tmp)
        os.rename(tmp, models_dir / model / "2")
        reader, writer = await asyncio.open_connection(HOST, port)
        states: dict = {}
        try:
            for _ in range(3000):
                _, status = await _request(reader, writer, "GET", f"/v1/models/{model}")
                states = {s["version"]: s["state"]
                          for s in json.loads(status)["model_version_status"]}
                if states == {"2": "AVAILABLE", "1": "END"}:
                    return f"version 2 published after {at} requests, version 1 unloaded " \
                           f"after {progress()}"
                await asyncio.sleep(0.01)
        finally:
            writer.close()
        return f"version 2 published after {at} requests, no switch seen: {states}"

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000, help="per run")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--serve-args", default="", metavar="ARGS",
                        help="more kspec serve options, e.g. '--batch-timeout-ms 5'")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; {args.clients} clients x {args.requests} requests of "
          "one row per run, on 127.0.0.1")
    print(f"{'model':<8} {'run':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
          f" {'not sent':>8}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows = export_models(out)
        for model in args.models:
            runs = {"in-process": in_process(out / model / "1", rows[model], args.requests)}
            for label, extra in [("batching", ()), ("no batching", ("--no-batching",)),
                                 ("switch", ())]:
                models_dir = out / f"{model}-{label.replace(' ', '-')}"
                models_dir.mkdir()
                shutil.copytree(out / model, models_dir / model)
                server = Server(models_dir, *extra, *shlex.split(args.serve_args))
                try:
                    # warm-up: first calls trace and allocate
                    asyncio.run(load(server.port, model, rows[model], 4, 50, 30))
                    during = (switcher(server.port, models_dir, model, args.requests // 4)
                              if label == "switch" else None)
                    runs[label] = asyncio.run(load(server.port, model, rows[model],
                                                   args.clients, args.requests,
                                                   args.time_limit, during))
                finally:
                    server.stop()
            for label, r in runs.items():
                print(f"{model:<8} {label:<12} {r['rps']:>8.0f} {r['p50']:>8.2f} "
                      f"{r['p99']:>8.2f} {r['errors']:>6} {r['not_sent']:>8}")
                if r.get("first_error"):
                    print(f"         first error: {r['first_error']}")
                if r.get("switch"):
                    print(f"         switch: {r['switch']}")
            results[model] = runs
    print()
    for model, runs in results.items():
        b, nb, ip = runs["batching"], runs["no batching"], runs["in-process"]
        print(f"{model:<8} batching / no batching: {b['rps'] / nb['rps']:.2f}x req/s; "
              f"HTTP (batching) / in-process: {b['rps'] / ip['rps']:.2f}x; "
              f"failed requests during the switch: {runs['switch']['errors']}")
    failed = sum(r["errors"] for runs in results.values() for r in runs.values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
