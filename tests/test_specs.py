"""Every example spec in specs/ validates, builds and trains for a few steps.

Specs run in sorted file-name order into one shared output folder, so a spec may reuse an
earlier one's run (transfer learning: pre-train first, fine-tune second).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kspec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    return tmp_path_factory.mktemp("spec_runs")


def test_there_are_example_specs():
    names = {p.stem for p in SPECS}
    assert {"quickstart", "mlp", "convnet", "regression"} <= names


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec_validates_builds_and_trains(path, shared_out, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = kspec.load_spec(path)
    run = kspec.fit(path, out=shared_out, epochs=1, steps_per_epoch=2, verbose=0)
    assert run.run_dir.parent == shared_out and (run.run_dir / "model.keras").is_file()
    losses = [v for k, v in run.history.items() if k.endswith("loss")]
    assert losses and all(np.isfinite(v).all() for v in losses)
    assert run.spec.name == spec.name


@pytest.mark.slow
def test_quickstart_reaches_the_accuracy_stated_in_the_readme(tmp_path):
    """The README states the quickstart's test accuracy; keep the claim true."""
    run = kspec.fit(ROOT / "specs/quickstart.yaml", out=tmp_path, verbose=0)
    assert run.test_metrics["accuracy"] >= 0.96
