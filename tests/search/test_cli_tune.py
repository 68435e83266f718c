"""`kspec tune` from the command line: a search, a refused resume, a worker without a chief."""

from __future__ import annotations

import socket
import time

import numpy as np
import yaml

from kspec.cli import main


def _write(tmp_path, spec: dict) -> str:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 4)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype("float32"))
    spec["data"]["source"] = {"type": "npz", "path": str(tmp_path / "data.npz")}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kspec_tune_then_refused_resume(make_spec, tmp_path, capsys):
    path = _write(tmp_path, make_spec(tuner="grid", max_trials=2))
    out = str(tmp_path / "projects")
    assert main(["tune", path, "--out", out, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "#1   trial" in printed and "training.optimizer.learning_rate" in printed
    assert "best spec" in printed and (tmp_path / "projects" / "lr_search" / "best_spec.yaml"
                                       ).is_file()

    changed = ["--set", "training.optimizer.learning_rate={$choice: [0.001, 0.05]}"]
    assert main(["tune", path, "--out", out, "--resume", "--quiet", *changed]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "search space changed" in err
    assert "training.optimizer.learning_rate.$choice[0]" in err


def test_a_worker_without_a_chief_fails_fast_with_a_clear_message(make_spec, tmp_path, capsys):
    path = _write(tmp_path, make_spec(tuner="random", max_trials=2))
    port = free_port()
    start = time.monotonic()
    code = main(["tune", path, "--out", str(tmp_path), "--worker", "tuner1", "--oracle",
                 f"127.0.0.1:{port}", "--connect-timeout", "1.5", "--quiet"])
    assert code == 2
    assert time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert f"no chief answered at 127.0.0.1:{port} within 1.5s" in err
    assert "--chief" in err


def test_a_chief_without_workers_gives_up_after_the_connect_timeout(make_spec, tmp_path,
                                                                    capsys):
    path = _write(tmp_path, make_spec(tuner="random", max_trials=2))
    start = time.monotonic()
    code = main(["tune", path, "--out", str(tmp_path), "--chief", "--oracle",
                 f"127.0.0.1:{free_port()}", "--connect-timeout", "1", "--quiet"])
    assert code == 2
    assert time.monotonic() - start < 30
    assert "no worker connected to the chief" in capsys.readouterr().err


def test_role_and_address_from_the_kerastuner_environment(monkeypatch):
    from kspec.search.distributed import parse_address, role_from_env

    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert role_from_env() == (None, None)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8123")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    assert role_from_env() == ("worker", "tuner3")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert role_from_env() == ("chief", "chief")
    assert parse_address("127.0.0.1:8123") == ("127.0.0.1", 8123)
    import pytest

    from kspec.errors import SpecError

    with pytest.raises(SpecError, match="--oracle: not an oracle address"):
        parse_address("localhost", "--oracle")
