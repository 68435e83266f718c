"""A search over this machine's devices (`kspec tune --devices N`): one worker process per
device, each pinned; the chief ends the search when its workers are gone."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import kspec
from kspec.errors import SpecError
from kspec.search import devices
from kspec.search.distributed import TuneError


def test_cpu_workers_get_their_own_cores(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "_gpu_ids", lambda: [])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    plan = devices.assignments(2)
    assert [label for label, _ in plan] == ["CPU cores 0-1", "CPU cores 2-4"]
    assert [env[devices.CPUS_ENV] for _, env in plan] == ["0,1", "2,3,4"]
    assert all(env["CUDA_VISIBLE_DEVICES"] == "" for _, env in plan)  # no GPU grabbed
    with pytest.raises(SpecError, match="6 workers asked for, this machine has no GPU and 5"):
        devices.assignments(6)


def test_gpu_workers_each_see_one_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    plan = devices.assignments(2)
    assert plan == [("GPU:3", {"CUDA_VISIBLE_DEVICES": "3"}),
                    ("GPU:5", {"CUDA_VISIBLE_DEVICES": "5"})]
    with pytest.raises(SpecError, match="3 workers asked for, this machine has 2 GPU"):
        devices.assignments(3)


def test_a_worker_pins_itself_to_its_cores(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: calls.append(cpus))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1})
    monkeypatch.setenv(devices.CPUS_ENV, "1")
    monkeypatch.setenv(devices.DEVICE_ENV, "CPU core 1")
    devices.pin_from_env()
    assert calls == [{1}] and "worker on CPU core 1: CPU cores [1]" in capsys.readouterr().out


def test_devices_refuse_in_memory_data_and_other_roles(make_spec, separable):
    spec = make_spec(tuner="random", max_trials=1)
    with pytest.raises(SpecError, match="cannot receive in-memory data"):
        kspec.tune(spec, data=separable, devices=1)
    with pytest.raises(SpecError, match="cannot run as 'worker'"):
        kspec.tune(spec, devices=1, role="worker")


def _search_file(tmp_path, make_spec, trials=4):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(160, 4)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype("float32"))
    spec = make_spec(tuner="random", max_trials=trials, distributed={"connect_timeout": 60})
    spec["training"]["optimizer"]["learning_rate"] = {"$choice": [1e-4, 1e-3, 0.01, 0.05]}
    spec["training"]["epochs"] = 1
    spec["data"]["source"] = {"type": "npz", "path": str(tmp_path / "data.npz")}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_search_ends_with_the_logs_when_every_worker_dies(make_spec, tmp_path,
                                                               monkeypatch):
    path = _search_file(tmp_path, make_spec)
    # The worker's environment breaks its Keras import (the chief's own is untouched).
    monkeypatch.setattr(devices, "assignments", lambda count, where="--devices": [
        ("CPU core 0", {"KERAS_BACKEND": "no_such_backend"})] * count)
    with pytest.raises(TuneError) as e:
        kspec.tune(path, out=tmp_path / "projects", devices=1, verbose=0)
    text = str(e.value)
    assert "every worker exited before the search was over" in text
    assert "tuner1 (" in text and "tuner1.log" in text and "no_such_backend" in text


@pytest.mark.slow
def test_two_cpu_workers_share_a_search(make_spec, tmp_path):
    path = _search_file(tmp_path, make_spec)
    out = tmp_path / "projects"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "kspec.cli", "tune", str(path), "--out",
                           str(out), "--devices", "2", "--quiet"], capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("worker ")]
    assert len(lines) == 2
    assert sum(int(line.split(": ")[1].split(" ")[0]) for line in lines) == 4
    logs = sorted((out / "lr_search" / "workers").glob("tuner*.log"))
    firsts = [log.read_text().splitlines()[0] for log in logs]
    # Each worker was pinned to one core of its own and saw no GPU.
    assert firsts[0].startswith("worker on CPU core") and firsts[0] != firsts[1]
    assert all("CUDA_VISIBLE_DEVICES=''" in line for line in firsts)
    assert (out / "lr_search" / "best_spec.yaml").is_file()
