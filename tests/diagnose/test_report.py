"""kspec report: the bias/variance arithmetic matches the metrics, the recipe's next step,
sampling noise, regression in the loss's units, and the CLI."""

from __future__ import annotations

import copy
import json
import math

import pytest

import kspec
from kspec.cli import main
from kspec.diagnose import bias_variance
from kspec.diagnose.report import STEPS
from kspec.rundir import RunDir
from kspec.train.error_rates import error_line, split_errors


def fake_run(tmp_path, spec: dict, metrics: dict, rows: dict | None = None):
    """A finished run directory as kspec fit leaves it, without training anything."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_spec(kspec.load_spec(spec))
    run.write_metrics(metrics)
    run.write_meta({"status": "finished", "rows": rows or {}})
    return run.path


def test_arithmetic_matches_the_metrics(tmp_path, tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["training"]["human_error"] = 0.02
    metrics = {"train": {"accuracy": 0.95, "loss": 0.2}, "validation": {"accuracy": 0.90},
               "test": {"accuracy": 0.885}}
    rows = {"train": 4000, "validation": 1000, "test": 1000}
    r = bias_variance(fake_run(tmp_path, spec, metrics, rows))
    assert r.measure == "1 - accuracy" and r.human_error == 0.02
    assert r.errors == pytest.approx({"train": 0.05, "validation": 0.10, "test": 0.115})
    assert r.gaps == pytest.approx({"bias": 0.03, "variance": 0.05, "mismatch": 0.015})
    se = {s: r.errors[s] * (1 - r.errors[s]) / rows[s] for s in rows}
    assert r.noise["variance"] == pytest.approx(2 * math.sqrt(se["train"] + se["validation"]))
    assert r.noise["mismatch"] == pytest.approx(2 * math.sqrt(se["validation"] + se["test"]))
    # variance (0.05) before bias (0.03); the dev-test gap (0.015) is within its noise (0.028)
    assert r.problems == ["variance", "bias"] and r.next_steps == STEPS["variance"]
    text = r.text()
    assert "high variance (overfitting)" in text and "get more training data" in text
    # An explicit human-level error wins over the spec's.
    assert bias_variance(tmp_path / "run", human_error=0.0).gaps["bias"] == pytest.approx(0.05)


def test_regression_reports_in_the_loss_units(tmp_path):
    spec = {"model": {"inputs": [{"name": "x", "shape": [3]}],
                      "layers": [{"type": "dense", "units": 1}]},
            "training": {"loss": "mse", "metrics": ["mae"], "human_error": 5.0}}
    metrics = {"train": {"loss": 10.0, "mae": 2.0}, "validation": {"loss": 30.0, "mae": 4.0}}
    r = bias_variance(fake_run(tmp_path, spec, metrics))
    assert r.measure == "loss" and r.errors == {"train": 10.0, "validation": 30.0}
    assert r.tolerance == pytest.approx(0.5) and r.noise == {}  # 10% of the human error
    assert r.gaps == pytest.approx({"bias": 5.0, "variance": 20.0})
    assert r.problems == ["variance", "bias"]


def test_within_tolerance_means_done(tmp_path, tiny_spec):
    metrics = {k: {"accuracy": 0.996} for k in ("train", "validation", "test")}
    r = bias_variance(fake_run(tmp_path, tiny_spec, metrics), human_error=0.0)
    assert r.problems == [] and "within tolerance" in r.text()


def test_a_real_run_and_the_fit_summary(tmp_path, tiny_spec, tiny_classification):
    run = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=2)
    from_run, from_dir = bias_variance(run), bias_variance(run.run_dir)
    for r in (from_run, from_dir):
        for split in ("train", "validation", "test"):
            assert r.errors[split] == pytest.approx(1 - run.metrics[split]["accuracy"])
    assert from_dir.rows == {"train": 72, "validation": 24, "test": 24}  # from meta.json
    assert from_dir.noise == pytest.approx(from_run.noise)
    line = error_line(run.spec, run.metrics)[0]
    assert line in run.summary().splitlines()
    errors = split_errors(run.spec, run.metrics)
    assert f"test {errors['test']:.4g}" in line and "dev" in line


def test_cli(tmp_path, tiny_spec, capsys):
    metrics = {"train": {"accuracy": 0.7}, "validation": {"accuracy": 0.69}}
    run_dir = fake_run(tmp_path, tiny_spec, metrics)
    assert main(["report", str(run_dir), "--human-error", "0.05", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gaps"]["bias"] == pytest.approx(0.25) and out["problems"] == ["bias"]
    assert out["next_steps"][0].startswith("train a bigger model")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a kspec run directory" in capsys.readouterr().err
