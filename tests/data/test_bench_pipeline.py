"""The pipeline benchmark runs (tiny sizes) and reports every ratio."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_pipeline_runs_small(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as when the script runs
    spec = importlib.util.spec_from_file_location("bench_pipeline",
                                                  ROOT / "benchmarks" / "bench_pipeline.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--n", "1500", "--size", "8", "--batch", "128", "--epochs", "2",
                "--repeats", "1", "--passes", "2"])
    out = capsys.readouterr().out
    assert "kspec / naive:" in out and "kspec / numpy:" in out
    assert "kspec / naive tf.data:" in out and "12 steps/epoch" in out
