"""Resuming interrupted runs in place: damaged backups, files a kill left behind, phases,
ensembles and early stopping all end as the uninterrupted run ends (issues #11, #12)."""

from __future__ import annotations

import copy
import csv
import json

import keras
import numpy as np
import pytest

import kspec
from kspec.rundir import RunDir

pytestmark = pytest.mark.slow  # each test trains two or three runs


class _Crash(keras.callbacks.Callback):
    """Raise at the end of ``epoch`` of the ``model``-th model trained (0: the first)."""

    def __init__(self, epoch: int, model: int = 0):
        super().__init__()
        self.epoch, self.model_index, self.seen = epoch, model, []

    def on_train_begin(self, logs=None):
        if id(self.model) not in self.seen:
            self.seen.append(id(self.model))

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and self.seen.index(id(self.model)) == self.model_index:
            raise RuntimeError("simulated kill")


def _spec(tiny_spec, **training):
    spec = copy.deepcopy(tiny_spec)
    spec["model"]["layers"].insert(1, {"type": "dropout", "rate": 0.3})  # seeds resume too
    spec["training"].update(training)
    return spec


def _crashed_run(tmp_path, spec, data, crash) -> RunDir:
    with pytest.raises(RuntimeError, match="simulated kill"):
        kspec.fit(spec, data=data, out=tmp_path / "crashed", callbacks=[crash])
    (path,) = (tmp_path / "crashed").iterdir()
    return RunDir(path)


def _same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


def _epochs(run: RunDir, tag: str = "") -> list[int]:
    with run.history_csv(tag).open() as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_a_damaged_newest_backup_falls_back_to_the_previous_one(tmp_path, tiny_spec,
                                                                 tiny_classification, capfd):
    spec = _spec(tiny_spec, epochs=5)
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(2))
    newest = sorted(run.backup_dir().glob("epoch-*.npz"))
    assert [p.name for p in newest] == ["epoch-000002.npz", "epoch-000003.npz"]
    newest[-1].write_bytes(newest[-1].read_bytes()[:200])  # half-written, as a crash leaves
    capfd.readouterr()
    resumed = kspec.fit(None, data=tiny_classification, resume=run.path)
    err = capfd.readouterr().err
    assert f"warning: {newest[-1]} cannot be read" in err
    assert "resuming from the older epoch-000002.npz" in err and "Traceback" not in err
    assert _epochs(run) == [0, 1, 2, 3, 4]
    reference = kspec.fit(spec, data=tiny_classification, out=tmp_path / "reference")
    _same_weights(resumed.model, reference.model)
    assert resumed.history["loss"] == reference.history["loss"]


def test_no_readable_backup_starts_the_run_again_with_one_line(tmp_path, tiny_spec,
                                                               tiny_classification, capfd):
    spec = _spec(tiny_spec, epochs=3)
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(1))
    for p in run.backup_dir().glob("epoch-*.npz"):
        p.write_bytes(b"not a zip archive")
    capfd.readouterr()
    resumed = kspec.fit(None, data=tiny_classification, resume=run.path)
    err = capfd.readouterr().err
    assert "no older backup: training starts again from its first epoch" in err
    assert _epochs(run) == [0, 1, 2] and len(resumed.history["loss"]) == 3


def test_resume_repairs_what_a_kill_left(tmp_path, tiny_spec, tiny_classification):
    """A kill between the backup and the history rewrite leaves the CSV an epoch behind; a
    kill while saving leaves temporary files. Resuming puts both right."""
    spec = _spec(tiny_spec, epochs=4)
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(1))
    rows = run.history_csv().read_text().splitlines()
    run.history_csv().write_text("\n".join(rows[:2]) + "\n")  # header + epoch 0 only
    stale = [run.path / ".model.tmp4242.keras", run.path / ".history.csv.x1y2.tmp",
             run.backup_dir() / ".epoch-000003.npz.k9.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    resumed = kspec.fit(None, data=tiny_classification, resume=run.path)
    assert not any(p.exists() for p in stale)
    assert _epochs(run) == [0, 1, 2, 3]
    assert resumed.history["loss"][:2] == pytest.approx(
        [float(r.split(",")[2]) for r in rows[1:3]])  # the epochs before the kill, kept


def test_a_kill_while_the_final_model_is_written_does_not_retrain(tmp_path, tiny_spec,
                                                                  tiny_classification,
                                                                  monkeypatch):
    spec = _spec(tiny_spec, epochs=3)

    def killed(self, model):
        (self.path / ".model.tmp77.keras").write_bytes(b"PK half")
        raise RuntimeError("simulated kill")

    with monkeypatch.context() as m:
        m.setattr(RunDir, "save_model", killed)
        with pytest.raises(RuntimeError, match="simulated kill"):
            kspec.fit(spec, data=tiny_classification, out=tmp_path)
    (path,) = tmp_path.iterdir()
    resumed = kspec.fit(None, data=tiny_classification, resume=path)
    assert resumed.phases[0]["epochs"] == 3  # restored from the last backup, not retrained
    assert _epochs(RunDir(path)) == [0, 1, 2]
    assert sorted(p.name for p in path.iterdir() if p.name.startswith(".")) == []
    reference = kspec.fit(spec, data=tiny_classification, out=tmp_path / "reference")
    _same_weights(resumed.model, reference.model)


def test_a_phased_run_resumes_in_its_phase_and_keeps_a_model_per_phase(
        tmp_path, tiny_spec, tiny_classification):
    spec = _spec(tiny_spec, phases=[
        {"name": "warm up", "epochs": 2, "optimizer": {"type": "sgd", "learning_rate": 0.05}},
        {"name": "last", "epochs": 3, "trainable": {"pattern": "output"}}])
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(3))  # inside phase 1
    assert run.phase_model_file(0, "warm up").is_file()
    assert not run.phase_model_file(1, "last").exists()
    resumed = kspec.fit(None, data=tiny_classification, resume=run.path)
    assert [p["epochs"] for p in resumed.phases] == [2, 3]
    assert _epochs(run) == [0, 1, 2, 3, 4]
    assert run.phase_model_file(0, "warm_up").name == "model_phase0_warm_up.keras"
    last = kspec.load_model(run.phase_model_file(1, "last"))
    _same_weights(last, resumed.model)
    reference = kspec.fit(spec, data=tiny_classification, out=tmp_path / "reference")
    _same_weights(resumed.model, reference.model)
    _same_weights(kspec.load_model(run.phase_model_file(0, "warm up")),
                  kspec.load_model(RunDir(reference.run_dir).phase_model_file(0, "warm up")))


def test_an_ensemble_resumes_in_its_member_and_writes_a_mean_history(
        tmp_path, tiny_spec, tiny_classification):
    spec = _spec(tiny_spec, epochs=2)
    spec["ensemble"] = {"members": 2}
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(0, model=1))
    assert _epochs(run, "member0") == [0, 1] and _epochs(run, "member1") == [0]
    resumed = kspec.fit(None, data=tiny_classification, resume=run.path)
    reference = kspec.fit(spec, data=tiny_classification, out=tmp_path / "reference")
    _same_weights(resumed.model, reference.model)
    with run.history_csv().open() as f:
        mean = [float(r["loss"]) for r in csv.DictReader(f)]
    members = []
    for tag in ("member0", "member1"):
        with run.history_csv(tag).open() as f:
            members.append([float(r["loss"]) for r in csv.DictReader(f)])
    assert mean == pytest.approx(np.mean(members, axis=0).tolist())


def test_early_stopping_decided_before_a_kill_holds_after_it(tmp_path, tiny_spec,
                                                             tiny_classification):
    spec = _spec(tiny_spec, epochs=8, callbacks={"early_stopping": {
        "monitor": "loss", "patience": 1, "min_delta": 100.0, "restore_best_weights": True}})
    # Epoch 0 is the best; epoch 1 fails to beat it by 100 and patience 1 stops there.
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(1))
    resumed = kspec.fit(None, data=tiny_classification, resume=run.path)
    assert _epochs(run) == [0, 1]
    reference = kspec.fit(spec, data=tiny_classification, out=tmp_path / "reference")
    assert len(reference.history["loss"]) == 2
    _same_weights(resumed.model, reference.model)  # epoch 0's weights, restored
    assert json.loads((run.path / "meta.json").read_text())["epochs"] == 2


def test_checkpoint_and_diagnostics_files_resume_without_gaps_or_repeats(
        tmp_path, tiny_spec, tiny_classification):
    spec = _spec(tiny_spec, epochs=4, diagnostics=True,
                 callbacks={"checkpoint": {"monitor": "val_loss"}})
    run = _crashed_run(tmp_path, spec, tiny_classification, _Crash(1))
    # As if killed after the diagnostics of epoch 2 were appended but before its backup.
    (run.backup_dir() / "epoch-000002.npz").unlink()
    kspec.fit(None, data=tiny_classification, resume=run.path)
    reference = kspec.fit(spec, data=tiny_classification, out=tmp_path / "reference")
    ref = RunDir(reference.run_dir)
    # The checkpoint's "best so far" survived the crash: the same epoch's model is kept.
    _same_weights(kspec.load_model(run.checkpoint_file), kspec.load_model(ref.checkpoint_file))
    assert not [p.name for p in run.path.iterdir() if p.name.startswith(".")]

    def epochs(r):
        with r.diagnostics_csv().open() as f:
            return sorted(int(row["epoch"]) for row in csv.DictReader(f) if
                          row["layer"] == "output")

    assert epochs(run) == epochs(ref) == [0, 1, 2, 3, 4]
