"""`kspec fit` and friends as a new user meets them: progress bars, finished runs,
continuing a run, summary counts and the test metrics of a search (issue #11)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import kspec
from kspec.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = """
kspec: 1
name: small
seed: 2
data:
  source: {type: bundled, name: digits}
  splits: {validation: 0.15, test: 0.15}
model:
  inputs: [{name: image, shape: [8, 8, 1]}]
  layers:
    - {type: flatten}
    - {type: dense, units: 16, activation: relu}
    - {type: dense, units: 10, activation: softmax}
training:
  optimizer: {type: adam, learning_rate: 0.003}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  batch_size: 64
  epochs: 3
  verbose: 0
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of SPEC (3 epochs) and its spec file."""
    folder = tmp_path_factory.mktemp("finished")
    spec = folder / "small.yaml"
    spec.write_text(SPEC)
    run = kspec.fit(spec, out=folder / "runs")
    return run.run_dir, spec


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_progress_bars_end_at_the_epochs_step_count(tmp_path, capsys, monkeypatch):
    """1257 training rows in batches of 55 are 23 steps, run 8 at a time: Keras reported the
    last call as step 24 ("24/23", a negative time left)."""
    from keras.src.utils.progbar import Progbar

    shown = Progbar.__init__

    def every_update(self, *args, **kwargs):  # print every update, not one per 50 ms
        shown(self, *args, **kwargs)
        self.interval = 0

    monkeypatch.setattr(Progbar, "__init__", every_update)
    spec = tmp_path / "small.yaml"
    spec.write_text(SPEC)
    assert main(["fit", str(spec), "--out", str(tmp_path), "--set", "training.verbose=1",
                 "--set", "training.batch_size=55", "--set", "training.epochs=2"]) == 0
    out = capsys.readouterr().out
    counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+)\x1b", out)]
    assert counts and {b for _, b in counts} == {23}
    assert max(a for a, _ in counts) == 23 and counts.count((23, 23)) >= 2
    assert not re.search(r"\x1b\[1m-\d", out)  # no negative time left
    steps = [a for a, _ in counts]
    assert steps[:3] == [8, 16, 23]  # one update per call into the graph, the last one capped


def test_resuming_a_finished_run_is_refused_and_changes_nothing(finished, capsys):
    run, _ = finished
    before = _hashes(run)
    assert main(["fit", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is finished (3 epochs" in err
    assert f"kspec fit --resume {run} --more-epochs N" in err
    assert main(["fit", "--resume", str(run), "--set", "training.epochs=8"]) == 2
    assert "is finished" in capsys.readouterr().err
    assert _hashes(run) == before


def test_set_with_resume_is_refused_for_an_interrupted_run(finished, tmp_path, capsys):
    run, _ = finished
    copy = tmp_path / run.name
    copy.mkdir()
    for name in ("spec.yaml", "meta.json"):
        (copy / name).write_bytes((run / name).read_bytes())
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "status": "failed"}))
    before = _hashes(copy)
    assert main(["fit", "--resume", str(copy), "--set", "training.epochs=8"]) == 2
    err = capsys.readouterr().err
    assert "--set training.epochs: a resumed run trains with the spec it started with" in err
    assert _hashes(copy) == before


def test_more_epochs_continues_a_finished_run_into_a_new_run(finished, tmp_path, capsys):
    run, _ = finished
    before = _hashes(run)
    out = tmp_path / "more"
    assert main(["fit", "--resume", str(run), "--more-epochs", "2", "--out", str(out),
                 "--set", "training.optimizer.learning_rate=0.001"]) == 0
    printed = capsys.readouterr().out
    (new,) = out.iterdir()
    assert _hashes(run) == before  # the finished run is a record: untouched
    meta = json.loads((new / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["epochs"] == 5
    assert meta["continued_from"] == {"run": str(run.resolve()), "epochs": 3,
                                      "optimizer_state": "new"}  # the optimizer changed
    with (new / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    with (run / "history.csv").open() as f:
        old = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4] and rows[:3] == old
    spec = yaml.safe_load((new / "spec.yaml").read_text())
    assert spec["training"]["epochs"] == 5
    assert spec["training"]["optimizer"]["learning_rate"] == 0.001
    assert f"from     {run.resolve()} (its 3 epochs come first" in printed
    # The new run starts from the old model: its first epoch is not a fresh start.
    assert float(rows[3]["loss"]) < float(old[0]["loss"])

    assert main(["fit", "--resume", str(run), "--more-epochs", "1", "--set",
                 "model.layers[1].units=8"]) == 2
    assert "keeps the model, the data and the epochs" in capsys.readouterr().err


def test_a_continued_run_keeps_the_optimizer_state_when_it_is_unchanged(finished):
    run, _ = finished
    more = kspec.fit(None, resume=run, more_epochs=1)
    assert more.run_dir.parent == run.parent and more.run_dir != run  # beside it, by default
    meta = json.loads((more.run_dir / "meta.json").read_text())
    assert meta["continued_from"]["optimizer_state"] == "continued"
    old = kspec.load_model(run)
    # Adam's step count went on from where the finished run stopped.
    steps = int(old.optimizer.iterations.numpy())
    assert int(more.model.optimizer.iterations.numpy()) == steps + steps // 3


def test_summary_counts_agree_with_kspec_build(capsys):
    spec = ROOT / "specs" / "quickstart.yaml"
    assert main(["summary", str(spec)]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"Total params: ([\d,]+)", out).group(1).replace(",", ""))
    built = kspec.build(kspec.load_spec(spec)).count_params()
    note = re.search(r"([\d,]+) of these params are statistics fitted on the training split "
                     r".*leaves those layers out: ([\d,]+) params", out)
    assert note, out
    fitted, without = (int(g.replace(",", "")) for g in note.groups())
    assert without == built and total - fitted == built and fitted == 2


def test_tune_reports_the_best_models_test_metrics(tmp_path, capsys):
    from tests.search.conftest import search_spec

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype("float32"))
    spec = search_spec(tmp_path / "tuning", tuner="grid", max_trials=2)
    spec["data"] = {"source": {"type": "npz", "path": str(tmp_path / "data.npz")},
                    "splits": {"validation": 0.25, "test": 0.25}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["tune", str(path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    project = tmp_path / "tuning" / "lr_search"
    report = json.loads((project / "best_metrics.json").read_text())
    assert set(report["test"]) == {"accuracy", "loss"} and report["rows"] == 50
    assert f"test        accuracy {report['test']['accuracy']:.4f}" in printed
    # What a hand-written script gets: the saved best model on the same test split.
    from kspec.train.loop import load_training_data

    best = kspec.load_spec(project / "best_spec.yaml")
    test = load_training_data(best).test
    model = kspec.load_model(project / "best_model.keras")
    values = model.evaluate(test.x["x"], test.y, verbose=0, return_dict=True)
    assert values["accuracy"] == pytest.approx(report["test"]["accuracy"])
    assert values["loss"] == pytest.approx(report["test"]["loss"], rel=1e-5)
