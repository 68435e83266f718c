"""Every example spec in specs/ validates, builds and trains for a few steps.

Each spec runs on its own: a spec whose transfer base is an earlier spec's run
(``base: {run: NAME}``) first fits the example spec of that name into the same folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kspec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.json"))


def _base_runs(spec) -> list[str]:
    """Names of the specs whose runs this spec starts from (``base: {run: NAME}``)."""
    bases = [spec.model.base] + [b.base for b in spec.model.blocks]
    return [b.run for b in bases if b is not None and b.run and "/" not in b.run
            and not b.run.endswith(".keras")]


def _example_named(name: str) -> Path:
    for path in SPECS:
        if kspec.load_spec(path).name == name:
            return path
    raise LookupError(f"no example spec is named {name!r}")


def test_there_are_example_specs():
    names = {p.stem for p in SPECS}
    assert {"quickstart", "mlp", "convnet", "regression"} <= names


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec_validates_builds_and_trains(path, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = kspec.load_spec(path)
    for name in _base_runs(spec):
        kspec.fit(_example_named(name), out=tmp_path, epochs=1, steps_per_epoch=2, verbose=0)
    run = kspec.fit(path, out=tmp_path, epochs=1, steps_per_epoch=2, verbose=0)
    assert run.run_dir.parent == tmp_path and (run.run_dir / "model.keras").is_file()
    losses = [v for k, v in run.history.items() if k.endswith("loss")]
    assert losses and all(np.isfinite(v).all() for v in losses)
    assert run.spec.name == spec.name


@pytest.mark.slow
def test_quickstart_reaches_the_accuracy_stated_in_the_readme(tmp_path):
    """The README states the quickstart's test accuracy; keep the claim true."""
    run = kspec.fit(ROOT / "specs/quickstart.yaml", out=tmp_path, verbose=0)
    assert run.test_metrics["accuracy"] >= 0.96
