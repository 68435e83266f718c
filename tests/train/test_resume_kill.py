"""SIGKILL ``kspec fit`` again and again at epoch ends, resume every time: the run ends as an
uninterrupted run with the same seed ends (issue #11 item 2, #12 item 4)."""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest

import kspec
from tests.helpers.killing import Zygote

pytestmark = pytest.mark.slow

KILLS = 20
EPOCHS = 24  # 20 kills leave it unfinished: each lets it advance 0-2 epochs (measured ~0.4)
# Shuffled, with dropout: the data order and the dropout seeds must both resume exactly.
SPEC = f"""
kspec: 1
name: killed
seed: 7
data:
  source: {{type: bundled, name: digits}}
  splits: {{validation: 0.15, test: 0.15}}
model:
  inputs: [{{name: image, shape: [8, 8, 1]}}]
  layers:
    - {{type: flatten}}
    - {{type: dense, units: 24, activation: relu}}
    - {{type: dropout, rate: 0.3}}
    - {{type: dense, units: 10, activation: softmax}}
training:
  optimizer: {{type: adam, learning_rate: 0.003}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  batch_size: 64
  epochs: {EPOCHS}
  verbose: 0
"""
MODES = ["startup", "backup-write", "after-backup", "after-history", "mid-epoch"]


def _look(run: Path | None) -> dict:
    """What the run directory holds now (cheap enough to poll every half millisecond)."""
    if run is None:
        return {}
    backups = [p for d in (run / "backup").glob("*") for p in d.iterdir()] \
        if (run / "backup").is_dir() else []
    hist = run / "history.csv"
    try:
        stat = hist.stat()
        hist_id = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except FileNotFoundError:
        hist_id = None
    return {"backups": {p.name for p in backups if not p.name.startswith(".")},
            "temporary": {p.name for p in backups if p.name.startswith(".")}, "history": hist_id,
            "model": (run / "model.keras").exists()
            or any(p.name.startswith(".model.tmp") for p in run.iterdir())}


def _kill_when(z: Zygote, mode: str, rng: random.Random, find_run, deadline: float) -> int:
    """Poll the run until ``mode``'s moment, kill the child, return its exit code."""
    start = time.monotonic()
    run = find_run()
    before = _look(run)
    seen_backups = 0
    pause = rng.uniform(0.0, 0.6) if mode == "startup" else None
    while time.monotonic() < deadline:
        if run is None:
            run = find_run()
            before = _look(run) if run is not None else before
        now = _look(run)
        new = len(now.get("backups", set()) - before.get("backups", set())) > seen_backups
        if new:
            seen_backups += 1
        fire = (
            (mode == "startup" and time.monotonic() - start > pause)
            or (mode == "backup-write" and (now.get("temporary", set())
                                            - before.get("temporary", set())
                                            or seen_backups >= 2))
            or (mode == "after-backup" and seen_backups >= 1)
            or (mode == "after-history" and before.get("history") != now.get("history")
                and now.get("history") is not None)
            or (mode == "final" and now.get("model"))
        )
        if mode == "mid-epoch" and seen_backups >= 1:
            time.sleep(rng.uniform(0.005, 0.06))
            fire = True
        if fire:
            z.kill()
            return z.wait()
        time.sleep(0.0005)
        if z.child is None:
            break
    z.kill()
    code = z.wait()
    raise AssertionError(f"no {mode} moment within the time limit (exit {code})")


def _rows(run: Path) -> list[dict]:
    with (run / "history.csv").open() as f:
        return list(csv.DictReader(f))


def test_twenty_kills_at_epoch_ends_then_resume_equals_an_uninterrupted_run(tmp_path):
    spec = tmp_path / "killed.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "runs"
    rng = random.Random(20261201)
    kills, modes = 0, []
    started = time.monotonic()
    with Zygote() as z:
        for cycle in range(KILLS + 1):
            runs = sorted(out.glob("killed-*")) if out.is_dir() else []
            run = runs[0] if runs else None
            if run is not None and json.loads((run / "meta.json").read_text())[
                    "status"] == "finished":
                break
            mode = ("after-backup" if cycle == 0 else "final" if cycle == KILLS
                    else rng.choice(MODES))
            args = (["fit", str(spec), "--out", str(out)] if run is None
                    else ["fit", "--resume", str(run)])
            log = tmp_path / f"cycle{cycle}.log"
            z.start(args, log)

            def find_run(run=run):
                if run is not None:
                    return run
                found = sorted(out.glob("killed-*")) if out.is_dir() else []
                return found[0] if found and (found[0] / "spec.yaml").is_file() else None

            code = _kill_when(z, mode, rng, find_run, time.monotonic() + 120)
            text = log.read_text() if log.exists() else ""
            assert "Traceback" not in text and "cannot be read" not in text, text
            assert code in (-9, 0), f"cycle {cycle} ({mode}) exited {code}: {text}"
            kills += code == -9
            modes.append(mode)
            done = len(_rows(run)) if run is not None and (run / "history.csv").exists() else 0
            print(f"cycle {cycle} {mode} exit {code} epochs {done} at "
                  f"{time.monotonic() - started:.1f}s")
    seconds = time.monotonic() - started
    (run,) = sorted(out.glob("killed-*"))
    assert kills >= KILLS, (kills, modes)

    # Whatever the last kill left, one more resume finishes the run (in this process).
    if json.loads((run / "meta.json").read_text())["status"] != "finished":
        resumed = kspec.fit(None, resume=run)
        weights = resumed.model.get_weights()
    else:
        weights = kspec.load_model(run).get_weights()
    reference = kspec.fit(spec, out=tmp_path / "reference")

    rows = _rows(run)
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS)), modes  # each exactly once
    assert [float(r["loss"]) for r in rows] == reference.history["loss"]
    for mine, theirs in zip(weights, reference.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert not (run / "backup").exists()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["resumed"]
    print(f"{kills} kills in {seconds:.1f}s; modes: {sorted(set(modes))}")
