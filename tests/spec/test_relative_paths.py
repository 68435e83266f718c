"""Relative paths in a spec file are relative to the file's folder, not the current one."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

import kspec

SPEC = {
    "kspec": 1,
    "name": "elsewhere",
    "seed": 3,
    "data": {"source": {"type": "npz", "path": "data/x.npz"}, "splits": {"validation": 0.2}},
    "model": {"inputs": [{"name": "features", "shape": [4]}],
              "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
    "training": {"loss": "sparse_categorical_crossentropy", "epochs": 1, "batch_size": 16,
                 "verbose": 0},
}


def _write(folder, spec: dict) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _source(spec) -> dict:
    return spec.to_dict()["data"]["source"]


def test_paths_of_a_spec_file_are_read_from_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "project"
    spec = kspec.load_spec(_write(project, SPEC))
    assert _source(spec)["path"] == str(project / "data" / "x.npz")
    named = dict(SPEC, data={"source": {"type": "csv", "label": "y", "path": {
        "train": "a.csv", "test": "../shared/b.csv"}}})
    paths = _source(kspec.load_spec(_write(project, named)))["path"]
    assert paths == {"train": str(project / "a.csv"), "test": str(tmp_path / "shared" / "b.csv")}


@pytest.mark.parametrize("source, key, expected", [
    ({"type": "image_folder", "path": "bundled:digit_images", "image_size": [8, 8]}, "path",
     "bundled:digit_images"),
    ({"type": "npz", "path": "/abs/x.npz"}, "path", "/abs/x.npz"),
    ({"type": "npz", "path": "~/x.npz"}, "path", "~/x.npz"),
    ({"type": "tfds", "name": "mnist", "data_dir": "tfds"}, "data_dir", "{folder}/tfds"),
    ({"type": "image_folder", "path": "images", "image_size": [8, 8]}, "path",
     "{folder}/images"),
])
def test_which_values_are_paths(tmp_path, source, key, expected):
    spec = kspec.load_spec(_write(tmp_path, dict(SPEC, data={"source": source})))
    assert _source(spec)[key] == expected.format(folder=tmp_path)


def test_transfer_bases_paths_but_not_run_names(tmp_path):
    spec = dict(SPEC, model={"inputs": [{"name": "features", "shape": [4]}], "blocks": [
        {"name": "a", "inputs": "features", "base": {"run": "pretrain"}},
        {"name": "b", "inputs": "features", "base": {"run": "runs/pretrain-20260101-000000"}},
        {"name": "c", "inputs": "features", "base": {"path": "models/m.keras"}},
        {"name": "d", "inputs": "features", "base": {"application": "MobileNetV2",
                                                     "weights": "w.weights.h5"}},
        {"name": "e", "inputs": ["a", "b", "c", "d"], "merge": "concatenate"}]})
    blocks = kspec.load_spec(_write(tmp_path, spec)).to_dict()["model"]["blocks"]
    assert blocks[0]["base"]["run"] == "pretrain"  # a spec name, searched in run folders
    assert blocks[1]["base"]["run"] == str(tmp_path / "runs" / "pretrain-20260101-000000")
    assert blocks[2]["base"]["path"] == str(tmp_path / "models" / "m.keras")
    assert blocks[3]["base"]["weights"] == str(tmp_path / "w.weights.h5")


def test_dicts_text_and_overrides_are_relative_to_the_current_folder(tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert _source(kspec.load_spec(SPEC))["path"] == str(here / "data" / "x.npz")
    assert _source(kspec.load_spec(yaml.safe_dump(SPEC)))["path"] == str(here / "data/x.npz")
    spec = kspec.load_spec(_write(tmp_path / "project", SPEC), ["data.source.path=in.npz"])
    assert _source(spec)["path"] == str(here / "in.npz")  # typed where the command runs


def test_a_run_of_a_dict_spec_records_where_its_data_was(tmp_path, monkeypatch):
    x, y = _data()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "x.npz", x=x, y=y)
    run = kspec.fit(SPEC, out=tmp_path / "runs")
    monkeypatch.chdir(run.run_dir)  # the run's spec.yaml works from any folder
    again = kspec.load_spec("spec.yaml")
    assert again == run.spec and _source(again)["path"] == str(tmp_path / "data" / "x.npz")


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=60)
    return (rng.normal(size=(60, 4)) + y[:, None]).astype("float32"), y


def test_fit_from_another_folder_and_again_from_the_run(tmp_path, monkeypatch):
    x, y = _data()
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    np.savez(project / "data" / "x.npz", x=x, y=y)
    path = _write(project, SPEC)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = kspec.fit(path, out=tmp_path / "runs")
    recorded = yaml.safe_load((run.run_dir / "spec.yaml").read_text())
    assert recorded["data"]["source"]["path"] == str(project / "data" / "x.npz")
    monkeypatch.chdir(tmp_path)
    again = kspec.fit(os.path.relpath(run.run_dir / "spec.yaml"), out=tmp_path / "runs")
    assert set(again.history) == set(run.history)
