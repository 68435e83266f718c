"""A search over the devices of one machine: one worker process per device, each pinned.

``kspec tune SPEC --devices N`` is the chief/worker search of :mod:`kspec.search.distributed`
on 127.0.0.1, started for you (what keras-team/keras-tuner#413 asks for): the process you
start holds the oracle, and N worker processes run one trial at a time each, every one
pinned to its own device. On a machine with GPUs a worker sees only its GPU
(``CUDA_VISIBLE_DEVICES``); without GPUs each worker gets its own share of the CPU cores
(its CPU affinity, which TensorFlow sizes its thread pools by). Workers write their output
to ``PROJECT/workers/tunerK.log``; a worker that dies ends the search with its log named
instead of leaving the chief waiting.

Example:
    >>> result = tune("specs/search_mlp.yaml", devices=2)  # doctest: +SKIP
    >>> sorted({t.tuner_id for t in result.trials})  # doctest: +SKIP
    ['tuner1', 'tuner2']
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kspec.errors import SpecError

CPUS_ENV = "KSPEC_WORKER_CPUS"  # the cores a CPU worker pins itself to (read by the CLI)
DEVICE_ENV = "KSPEC_WORKER_DEVICE"  # the device a worker was given, for its log


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the chief binds it right after)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in ("", "-1"):
        return [v.strip() for v in visible.split(",") if v.strip()]
    import tensorflow as tf

    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


def assignments(count: int, where: str = "--devices") -> list[tuple[str, dict[str, str]]]:
    """For each of ``count`` workers: the device it gets and its environment changes.

    Raises:
        SpecError: more workers than GPUs (or, without GPUs, than CPU cores).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SpecError(where, "the number of devices is a positive integer", value=count)
    gpus = _gpu_ids()
    if gpus:
        if count > len(gpus):
            raise SpecError(where, f"{count} workers asked for, this machine has {len(gpus)} "
                            "GPU(s)", value=count, valid=f"at most {len(gpus)}")
        return [(f"GPU:{gpus[k]}", {"CUDA_VISIBLE_DEVICES": gpus[k]}) for k in range(count)]
    cores = sorted(os.sched_getaffinity(0))
    if count > len(cores):
        raise SpecError(where, f"{count} workers asked for, this machine has no GPU and "
                        f"{len(cores)} CPU core(s) for this process", value=count,
                        valid=f"at most {len(cores)}")
    share = len(cores) // count
    out = []
    for k in range(count):
        mine = cores[k * share:(k + 1) * share] if k < count - 1 else cores[k * share:]
        label = f"CPU cores {mine[0]}-{mine[-1]}" if len(mine) > 1 else f"CPU core {mine[0]}"
        out.append((label, {"CUDA_VISIBLE_DEVICES": "", CPUS_ENV: ",".join(map(str, mine))}))
    return out


def pin_from_env() -> None:
    """In a worker: pin this process to the CPU cores its chief gave it (before TensorFlow
    starts its thread pools)."""
    cpus = os.environ.get(CPUS_ENV)
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    if DEVICE_ENV in os.environ:  # the first line of the worker's log
        print(f"worker on {os.environ[DEVICE_ENV]}: CPU cores "
              f"{sorted(os.sched_getaffinity(0))}, CUDA_VISIBLE_DEVICES="
              f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')!r}", flush=True)


@dataclass
class Worker:
    """One worker process and where it runs."""

    tuner_id: str
    device: str
    process: Any
    log: Path
    returncode: int | None = None


@dataclass
class Workers:
    """The worker processes of a multi-device search."""

    workers: list[Worker] = field(default_factory=list)

    def alive(self) -> bool:
        """Whether any worker is still running."""
        return any(w.process.poll() is None for w in self.workers)

    def failed(self) -> list[Worker]:
        """Workers that exited with a non-zero status."""
        return [w for w in self.workers if w.process.poll() not in (None, 0)]

    def finish(self, grace: float = 30.0) -> list[dict[str, Any]]:
        """Wait up to ``grace`` seconds for every worker, end the rest; their records."""
        deadline = time.monotonic() + grace
        for w in self.workers:
            try:
                w.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.process.kill()  # our own child, by its handle
                w.process.wait()
            w.returncode = w.process.returncode
        return [{"tuner_id": w.tuner_id, "device": w.device, "returncode": w.returncode,
                 "log": str(w.log)} for w in self.workers]

    def tails(self, lines: int = 3) -> str:
        """The last lines of each failed worker's log, for an error message."""
        parts = []
        for w in self.failed():
            text = w.log.read_text(errors="replace").strip().splitlines() if w.log.is_file() \
                else []
            parts.append(f"{w.tuner_id} ({w.device}) exited with status "
                         f"{w.process.returncode}: {' | '.join(text[-lines:]) or 'no output'} "
                         f"(log: {w.log})")
        return "; ".join(parts)


def launch(raw_spec: dict, project_dir: Path, out: Path, host: str, port: int,
           count: int, verbose: int = 1) -> Workers:
    """Start ``count`` workers of the search ``raw_spec`` against the chief at host:port.

    The spec is written to ``PROJECT/workers/search_spec.json`` exactly as the chief read
    it (overrides applied, paths absolute), so every worker searches the same spaces.
    """
    folder = project_dir / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    spec_file = folder / "search_spec.json"
    spec_file.write_text(json.dumps(raw_spec, indent=1), encoding="utf-8")
    result = Workers()
    for k, (device, env) in enumerate(assignments(count), start=1):
        tuner_id = f"tuner{k}"
        log = folder / f"{tuner_id}.log"
        cmd = [sys.executable, "-m", "kspec.cli", "tune", str(spec_file), "--worker", tuner_id,
               "--oracle", f"{host}:{port}", "--out", str(out)]
        if not verbose:
            cmd.append("--quiet")
        child_env = {**os.environ, **env, DEVICE_ENV: device}
        for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
            child_env.pop(key, None)
        with open(log, "w", encoding="utf-8") as handle:
            process = subprocess.Popen(cmd, env=child_env, stdout=handle,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        result.workers.append(Worker(tuner_id, device, process, log))
    return result
