"""Multi-worker training: two `kspec fit` processes started as a TF_CONFIG cluster on
127.0.0.1. Keras 3 cannot fit under MultiWorkerMirroredStrategy (keras-team/keras#20585,
reproduced with Keras 3.15.1: the first step fails), so both stop before training with the
reason and what to use instead, under a timeout: no hang, no run directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import yaml


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_two_worker_cluster_is_refused_by_both_workers(tmp_path, tiny_spec):
    spec = dict(tiny_spec)
    spec["data"] = {"source": {"type": "bundled", "name": "iris"}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    cluster = {"worker": [f"127.0.0.1:{_port()}", f"127.0.0.1:{_port()}"]}
    procs = []
    for index, extra in enumerate([["--set", "training.distribution.strategy=multi_worker"],
                                   []]):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "kspec.cli", "fit", str(path), "--out", str(tmp_path / "runs"),
             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for proc in procs:
            results.append(proc.communicate(timeout=120))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    (_, asked), (_, plain) = results
    assert [p.returncode for p in procs] == [2, 2], asked + plain
    # The worker that asked for multi_worker: refused at validation, with what to use instead.
    assert "training.distribution.strategy" in asked and "keras-team/keras#20585" in asked
    assert "strategy: mirrored" in asked and "kspec tune --devices N" in asked
    # The one that did not: its TF_CONFIG would have it train alone, so it stops too.
    assert "TF_CONFIG: describes a cluster of 2 tasks (2 worker)" in plain
    assert "would train alone" in plain
    assert not (tmp_path / "runs").exists()
