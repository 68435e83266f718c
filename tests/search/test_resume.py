"""Long searches: interrupted and resumed, changed spaces refused, memory flat across trials."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import yaml

import kspec
from kspec.errors import SpecError


def test_killed_search_resumes_without_losing_finished_trials(make_spec, tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(160, 4)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype("float32"))
    spec = make_spec(tuner="random", max_trials=3)
    spec["training"]["optimizer"]["learning_rate"] = {"$choice": [1e-4, 1e-3, 0.01, 0.05]}
    spec["data"]["source"] = {"type": "npz", "path": str(tmp_path / "data.npz")}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    project = tmp_path / "tuning" / "lr_search"

    # A real kill (SIGKILL, no clean-up) while the second trial trains.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "kspec.cli", "tune", str(path), "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (project / "trial_1" / "spec.yaml").exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the search never reached its second trial"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert not (project / "trial_1" / "kspec_trial.json").exists()  # killed mid-trial

    with pytest.raises(SpecError, match="already exists.*--resume"):
        kspec.tune(path, verbose=0)

    result = kspec.tune(path, verbose=0, resume=True)
    assert [r.status for r in result.trials] == ["COMPLETED"] * 3
    first = result.trials[0]
    # The finished trial was kept, not re-run: its record predates the resumed run.
    record = (result.project_dir / f"trial_{first.trial_id}" / "kspec_trial.json")
    interrupted = (result.project_dir / f"trial_{result.trials[1].trial_id}" / "kspec_trial.json")
    assert record.stat().st_mtime < interrupted.stat().st_mtime
    assert len({r.values["training.optimizer.learning_rate"] for r in result.trials}) == 3

    # More trials: --set search.max_trials does not change the search, so resume accepts it.
    more = kspec.tune(path, verbose=0, resume=True, overrides={"search.max_trials": 4})
    assert len(more.trials) == 4
    assert more.trials[0].score == first.score

    # A changed search space is refused, naming what changed.
    spec["training"]["optimizer"]["learning_rate"] = {"$choice": [1e-4, 1e-3, 0.01, 0.1]}
    with pytest.raises(SpecError, match=r"search space changed \(training.optimizer."
                       r"learning_rate.\$choice\[3\]\)"):
        kspec.tune(spec, verbose=0, resume=True)
    spec["training"]["optimizer"]["learning_rate"] = {"$choice": [1e-4, 1e-3, 0.01, 0.05]}
    spec["training"]["batch_size"] = 16
    with pytest.raises(SpecError, match=r"the spec changed \(training.batch_size\)"):
        kspec.tune(spec, verbose=0, resume=True)


class LiveObjects(keras.callbacks.Callback):
    """Counts live Keras layers that do not belong to the model being trained, when each
    trial starts training (the class keeps the counts: KerasTuner deep-copies callbacks)."""

    layers: list[int] = []
    rss: list[int] = []

    def on_train_begin(self, logs=None):
        import psutil

        gc.collect()
        live = sum(isinstance(o, keras.layers.Layer) for o in gc.get_objects())
        # The model being trained is a Layer too; anything beyond it and its layers leaked.
        type(self).layers.append(live - (len(self.model.layers) + 1))
        type(self).rss.append(psutil.Process().memory_info().rss)


def test_memory_stays_flat_across_trials(make_spec, separable):
    spec = make_spec(tuner="grid", max_trials=6)
    spec["model"]["layers"][0]["units"] = {"$choice": [2, 3, 4, 5, 6, 7]}
    spec["training"]["optimizer"]["learning_rate"] = 0.01
    spec["training"]["epochs"] = 1
    LiveObjects.layers, LiveObjects.rss = [], []
    result = kspec.tune(spec, data=separable, verbose=0, callbacks=[LiveObjects()])
    assert len(result.trials) == 6
    layers = LiveObjects.layers
    # Only the model of the running trial is alive: no layer of an earlier trial survives.
    assert layers == [0] * 6, layers
    growth = LiveObjects.rss[-1] - LiveObjects.rss[1]
    assert growth < 150 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB over 4 trials"
