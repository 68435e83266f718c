"""The scale benchmarks run (tiny sizes, in fresh processes) and print every row and ratio;
timings are theirs to measure, not the tests'."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHON": sys.executable}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_distribute_prints_every_configuration():
    out = _run([sys.executable, "benchmarks/bench_distribute.py", "--rows", "2048",
                "--epochs", "2", "--repeats", "1"])
    for name in ("float32, one device", "float32, mirrored x2", "mixed_bfloat16",
                 "float32 + XLA", "mixed_bfloat16 + XLA"):
        (line,) = [row for row in out.splitlines() if row.startswith(name + "  ")]
        assert len(line.split()) >= 5, line  # samples/s both ways and three ratios
    assert "kspec/hand" in out and "cores=" in out


def test_gpu_check_runs_on_cpu_and_says_what_it_skipped():
    out = _run(["bash", "benchmarks/gpu_check.sh", "--rows", "256", "--epochs", "2"])
    rows = [line for line in out.splitlines() if line.startswith(("convnet ", "resnet_small "))]
    if "gpu_check: no GPU" in out:
        assert "SKIPPED (no GPU): mixed_float16 and mixed_float16 + XLA rows" in out
        assert [r.split()[:2] for r in rows] == [["convnet", "float32"],
                                                 ["resnet_small", "float32"]]
    else:  # on a GPU: every mode of both models, XLA on where asked for
        assert len(rows) == 6 and "SKIPPED" not in out
        assert all("True/True" in r for r in rows if "+ XLA" in r), rows


def test_bench_process_runs_both_sides_and_compares_the_same_result():
    """One measured pair of the small job: kspec fit and the hand-written script both run
    as processes, the ratios are printed, and both reach a test accuracy the bench prints."""
    out = _run([sys.executable, "benchmarks/bench_process.py", "--jobs", "mlp", "--pairs", "1"])
    (pair,) = [row for row in out.splitlines() if "pair 1:" in row]
    assert "kspec" in pair and "hand" in pair and "wall x" in pair and "CPU x" in pair
    (acc,) = [row for row in out.splitlines() if "test accuracy" in row]
    ours, hand = (float(v) for v in re.findall(r"(?:kspec|hand) ([0-9.]+)", acc))
    assert ours > 0.9 and hand > 0.9, acc
    (summary,) = [row for row in out.splitlines() if row.startswith("mlp ")]
    assert len(summary.split()) == 10, summary  # three medians each side and three ratios
