"""A distributed search on 127.0.0.1: one chief and two workers, every process under a timeout."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers(make_spec, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(160, 4)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype("float32"))
    spec = make_spec(tuner="random", max_trials=2)
    spec["training"]["optimizer"]["learning_rate"] = {"$choice": [1e-4, 1e-3, 0.01, 0.05]}
    spec["training"]["epochs"] = 1
    spec["data"]["source"] = {"type": "npz", "path": str(tmp_path / "data.npz")}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))

    oracle = f"127.0.0.1:{free_port()}"
    out = str(tmp_path / "projects")
    base = [sys.executable, "-m", "kspec.cli", "tune", str(path), "--out", out, "--quiet",
            "--oracle", oracle, "--connect-timeout", "90"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(key, None)
    chief = subprocess.Popen([*base, "--chief", "--workers", "2", "--timeout", "170"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = [subprocess.Popen([*base, "--worker", f"tuner{i}"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in (1, 2)]
    outputs = []
    try:
        for proc in [*workers, chief]:
            stdout, stderr = proc.communicate(timeout=180)
            outputs.append((proc.returncode, stdout, stderr))
    finally:
        for proc in [*workers, chief]:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for code, stdout, stderr in outputs:
        assert code == 0, stdout + stderr[-3000:]
    ran = [int(o[1].split("ran ")[1].split(" ")[0]) for o in outputs[:2]]
    assert sum(ran) == 2, ran
    rows = list(csv.DictReader(open(tmp_path / "projects" / "lr_search" / "trials.csv")))
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)
    assert "best spec" in outputs[2][1]
    assert (tmp_path / "projects" / "lr_search" / "best_model.keras").is_file()


def test_a_worker_reads_only_its_own_trials(tmp_path):
    """Another worker's trial.json may be half-written when this worker finishes (CI saw a
    JSONDecodeError from it); the worker's summary reads only the trials it ran."""
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module

    from kspec.search.run import _Finished

    done = trial_module.Trial(kt.HyperParameters(), trial_id="0", status="COMPLETED")
    (tmp_path / "trial_0").mkdir()
    done.save(str(tmp_path / "trial_0" / "trial.json"))
    (tmp_path / "trial_1").mkdir()
    (tmp_path / "trial_1" / "trial.json").write_text("")  # the chief is writing it now
    finished = _Finished(tmp_path, ["0"])
    assert list(finished.trials) == ["0"] and finished.start_order == ["0"]
    assert finished.trials["0"].status == "COMPLETED"
