"""kspec.fit: training, the run directory record, resume, failures that keep results."""

from __future__ import annotations

import copy
import csv
import json

import keras
import numpy as np
import pytest

import kspec
from kspec.errors import DataError, SpecError


def test_fit_records_a_complete_run(tmp_path, tiny_spec, tiny_classification):
    run = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=3)
    d = run.run_dir
    assert d.parent == tmp_path and d.name.startswith("tiny-")
    for name in ("spec.yaml", "meta.json", "history.csv", "history.png", "metrics.json",
                 "model.keras"):
        assert (d / name).is_file(), name
    assert not (d / "backup").exists()  # BackupAndRestore state is removed on success
    # The resolved spec repeats the run: epochs override included, defaults filled in.
    saved = kspec.load_spec(d / "spec.yaml")
    assert saved.training.epochs == 3 and saved == run.spec
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["seed"] == 1
    assert meta["versions"]["keras"] == keras.__version__ and "tensorflow" in meta["versions"]
    rows = list(csv.DictReader((d / "history.csv").open()))
    assert len(rows) == 3 and {"loss", "val_loss", "accuracy"} <= set(rows[0])
    assert run.history["loss"] == pytest.approx([float(r["loss"]) for r in rows])
    assert set(run.metrics) == {"train", "validation", "test"}
    assert run.test_metrics == json.loads((d / "metrics.json").read_text())["test"]
    # The saved model loads in safe mode and predicts like the trained one.
    x = tiny_classification[0][:5]
    loaded = keras.saving.load_model(d / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), run.model.predict(x, verbose=0),
                               rtol=1e-6)
    assert "test" in run.summary() and str(d) in run.summary()


def test_training_learns_a_separable_problem(tmp_path, tiny_spec, tiny_classification):
    run = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=25)
    assert run.history["loss"][-1] < run.history["loss"][0]
    assert run.test_metrics["accuracy"] >= 0.8


def test_same_seed_same_result(tmp_path, tiny_spec, tiny_classification):
    a = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=2)
    b = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=2)
    assert a.run_dir != b.run_dir
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=1e-5)


def test_named_splits_and_kwargs(tmp_path, tiny_spec, tiny_classification):
    x, y = tiny_classification
    data = {"train": (x[:80], y[:80]), "test": (x[80:], y[80:])}
    tiny_spec["data"]["splits"] = {}  # the splits are given: no fractions to carve
    tiny_spec["training"]["class_weight"] = "balanced"
    run = kspec.fit(tiny_spec, data=data, out=tmp_path, epochs=1, batch_size=40, seed=5)
    assert set(run.metrics) == {"train", "test"}
    assert run.spec.seed == 5 and run.spec.training.batch_size == 40
    with pytest.raises(TypeError, match="unexpected keyword 'epoch'"):
        kspec.fit(tiny_spec, data=data, out=tmp_path, epoch=1)


def test_monitoring_validation_without_a_validation_split(tmp_path, tiny_spec,
                                                          tiny_classification):
    tiny_spec["data"]["splits"] = {"validation": 0.0, "test": 0.0}
    tiny_spec["training"]["callbacks"] = {"early_stopping": {"monitor": "val_loss"}}
    with pytest.raises(SpecError) as info:
        kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path)
    assert info.value.path == "training.callbacks.early_stopping.monitor"


def test_early_stopping_stops(tmp_path, tiny_spec, tiny_classification):
    tiny_spec["training"]["callbacks"] = {
        "early_stopping": {"monitor": "loss", "patience": 0, "min_delta": 100.0}}
    run = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=20)
    # Epoch 1 sets the best value; epoch 2 fails to beat it by 100, and patience is 0.
    assert len(run.history["loss"]) == 2


def test_nan_loss_fails_clearly_and_keeps_the_run(tmp_path, tiny_spec, tiny_classification):
    tiny_spec["training"]["optimizer"] = {"type": "sgd", "learning_rate": 1e30}
    tiny_spec["training"]["loss"] = "mse"
    tiny_spec["model"]["layers"][-1] = {"type": "dense", "units": 1}
    with pytest.raises(DataError, match="NaN/inf"):
        kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=3)
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed" and (run_dir / "spec.yaml").is_file()


def test_bad_data_is_refused_before_training(tmp_path, tiny_spec, tiny_classification):
    x, y = tiny_classification
    x = x.copy()
    x[7, 2] = np.nan
    with pytest.raises(DataError, match=r"'features'.*non-finite"):
        kspec.fit(tiny_spec, data=(x, y), out=tmp_path)
    with pytest.raises(DataError, match="y has 10 rows but the features have 120"):
        kspec.fit(tiny_spec, data=(tiny_classification[0], y[:10]), out=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was written for refused data


class _Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("simulated crash")


def test_resume_after_a_crash_continues_from_the_last_epoch(tmp_path, tiny_spec,
                                                            tiny_classification):
    spec = copy.deepcopy(tiny_spec)
    spec["training"]["epochs"] = 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        kspec.fit(spec, data=tiny_classification, out=tmp_path, callbacks=[_Crash()])
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    assert (run_dir / "backup").is_dir()
    run = kspec.fit(None, data=tiny_classification, resume=run_dir)
    assert run.run_dir == run_dir
    # Epochs 0 and 1 were backed up before the crash (the crashing callback runs last);
    # the resumed run trains the remaining two epochs only; its history is the whole run's.
    assert len(run.history["loss"]) == 4 and run.phases[0]["epochs"] == 4
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "finished"


def test_metric_names_stay_plain_across_models_in_one_session(tmp_path, tiny_spec,
                                                              tiny_classification):
    """Keras numbers repeated default names (auc, auc_1, ...); runs report the spec's name,
    and a name a metric chose itself keeps its digits."""
    tiny_spec["training"]["metrics"] = [
        "accuracy", {"type": "sparse_top_k_categorical_accuracy", "k": 2},
        {"type": "per_class_accuracy", "class_id": 1}]
    first = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=1)
    second = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=1)
    for run in (first, second):
        assert {"sparse_top_k_categorical_accuracy", "class_1_accuracy"} <= set(
            run.metrics["test"]), sorted(run.metrics["test"])
