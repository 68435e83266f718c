"""The streaming benchmark runs (tiny sizes) and reports every figure it promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_stream_runs_small(capsys):
    spec = importlib.util.spec_from_file_location("bench_stream",
                                                  ROOT / "benchmarks" / "bench_stream.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--images", "60", "--size", "16", "--scales", "1",
                          "--epochs", "2", "--threads", "1"])
    out = capsys.readouterr().out
    assert "png streamed peak RSS at 1x:" in out and "png in memory peak RSS" in out
    assert "tfrecord 1x kspec / hand throughput: pipeline alone" in out
    assert {k[1] for k in results} == {"kspec", "hand", "memory"}
    assert all(r["rss_mb"] > 0 and r["epoch_s"] > 0 for r in results.values())
