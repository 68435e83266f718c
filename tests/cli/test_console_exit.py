"""The console script ends a finished command without TensorFlow's slow interpreter teardown
(``os._exit`` after flushing): its exit status, its output and the files it wrote must be
exactly those of a normal exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = """kspec: 1
name: exit_check
data: {source: {type: bundled, name: iris}, splits: {test: 0.2}}
model:
  inputs: [{name: features, shape: [4]}]
  layers: [{type: dense, units: 3, activation: softmax}]
training: {loss: sparse_categorical_crossentropy, metrics: [accuracy], epochs: 2}
"""


def _kspec(*args: str, cwd: Path, full_exit: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KSPEC_FULL_EXIT"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **({"KSPEC_FULL_EXIT": "1"} if full_exit else {}))
    return subprocess.run([sys.executable, "-m", "kspec.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("full_exit", [False, True], ids=["fast exit", "full exit"])
def test_output_status_and_files_are_those_of_a_normal_exit(tmp_path, full_exit):
    (tmp_path / "spec.yaml").write_text(SPEC)
    done = _kspec("fit", "spec.yaml", "--out", "runs", "--quiet", cwd=tmp_path,
                  full_exit=full_exit)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("run      ") and lines[-1].startswith("model    ")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "finished"
    assert (run_dir / "model.keras").stat().st_size > 0
    assert not list(run_dir.glob(".*tmp*"))  # nothing left half-written

    # An expected error after TensorFlow was imported keeps its status and its line.
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")  # not the model's four features
    bad = _kspec("predict", str(run_dir), "--input", "rows.csv", cwd=tmp_path,
                 full_exit=full_exit)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: "), bad.stderr


@pytest.mark.parametrize("collecting", [True, False], ids=["gc on", "gc off"])
def test_the_tensorflow_import_is_frozen_and_the_collector_restored(collecting):
    """The command line pauses the cyclic collector while TensorFlow imports and freezes what
    the import created; afterwards the collector is on again exactly when it was before."""
    code = f"""
import gc, sys
if not {collecting}:
    gc.disable()
from kspec.cli.common import quiet_tensorflow
quiet_tensorflow()
print("tensorflow" in sys.modules, gc.isenabled(), gc.get_freeze_count())
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    imported, enabled, frozen = done.stdout.split()
    assert imported == "True" and enabled == str(collecting)
    assert int(frozen) > 100_000  # TensorFlow's modules, not just kspec's
