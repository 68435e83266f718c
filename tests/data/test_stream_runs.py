"""Runs on streamed sources, end to end: a streamed image folder and TFRecord files train,
export (parity on a streamed sample) and predict; CSV chunks match the in-memory reader and
carry derived targets and fairness groups; TFDS streams under mock data."""

from __future__ import annotations

import numpy as np
import pytest

import kspec
from kspec.data.loading import load_data
from kspec.errors import DataError
from tests.data.stream_helpers import image_folder, records

IMAGE = [{"name": "image", "shape": [8, 8, 1]}]
CONV = [{"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}]


def _predict_files(model_dir, files):
    from kspec.exporter.predict import load_predictor, predictions, read_inputs

    predictor = load_predictor(model_dir)
    inputs = read_inputs(files, predictor)
    return inputs, predictions(predictor, inputs)


def test_streamed_image_folder_trains_exports_and_predicts(make_spec, tmp_path):
    folder = image_folder(tmp_path / "imgs", per_class=12)
    cache = tmp_path / "cache"
    spec = make_spec({"source": {"type": "image_folder", "path": str(folder),
                                 "image_size": [8, 8], "color_mode": "grayscale",
                                 "stream": True, "cache": str(cache)},
                      "splits": {"validation": 0.25, "test": 0.25, "stratify": True},
                      "preprocessing": [{"type": "min_max", "per": "global"}]},
                     inputs=IMAGE, layers=CONV,
                     training={"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                               "metrics": ["accuracy"], "batch_size": 8, "epochs": 2,
                               "verbose": 0, "tta": {"scheme": "flip"}})
    run = kspec.fit(spec, out=tmp_path / "runs")
    assert {"train", "validation", "test", "test_tta"} <= set(run.metrics)
    assert [len(s) for s in run.data.splits().values()] == [18, 9, 9]
    assert any(cache.iterdir()), "decoded images were cached to the folder"
    result = kspec.export(run, out=tmp_path / "models")
    assert result.check.inputs.startswith("test split") and not result.check.problems
    files = sorted((folder / "c2").iterdir())
    inputs, out = _predict_files(tmp_path / "models" / spec.name, files)
    np.testing.assert_allclose(out["output"], run.model.predict(inputs["image"], verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert out["output_label"].tolist() == [run.data.meta["class_names"][c]
                                            for c in out["output_class"]]


def test_streamed_tfrecords_train_export_and_predict_on_records(make_spec, tmp_path):
    folder = records(tmp_path / "rec", files=3, per_file=16)
    source = {"type": "tfrecord", "path": str(folder / "part-*.tfrecord"), "label": "label",
              "features": {"image": {"encoding": "png", "shape": [8, 8, 1]},
                           "stats": {"shape": [2]}},
              "inputs": {"image": "image", "meta": "stats"}, "shuffle_buffer": 8}
    spec = make_spec({"source": source, "splits": {"validation": 0.25},
                      "preprocessing": [{"type": "zscore", "per": "global"}]},
                     inputs=[*IMAGE, {"name": "meta", "shape": [2]}])
    run = kspec.fit(spec, out=tmp_path / "runs", epochs=1)
    assert len(run.data.train) + len(run.data.validation) == 48
    assert [la.name for la in run.model.layers if "zscore" in la.name] == [
        "image_zscore_0", "meta_zscore_0"]
    kspec.export(run, out=tmp_path / "models")
    inputs, out = _predict_files(tmp_path / "models" / spec.name,
                                 [folder / "part-0.tfrecord", folder / "part-2.tfrecord"])
    assert out["output"].shape == (32, 3) and inputs["image"].shape == (32, 8, 8, 1)
    np.testing.assert_allclose(out["output"], run.model.predict(inputs, verbose=0),
                               rtol=1e-5, atol=1e-6)


def _table(path, n=240, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).round(4), columns=["a", "b", "c"])
    frame["score"] = (100 + 40 * frame.a + 5 * rng.normal(size=n)).round(2)
    frame["grp"] = np.where(frame.c > 0, "north", "south")
    frame["kind"] = np.array(["ant", "bee"])[(frame.b > 0).astype(int)]
    frame.to_csv(path, index=False)
    return frame


def test_streamed_csv_matches_in_memory_and_derives_targets(make_spec, tmp_path):
    from kspec.data.preprocess import fit_preprocessing, fit_streamed
    from kspec.train.loop import load_training_data

    path = tmp_path / "t.csv"
    _table(path)
    source = {"type": "csv", "path": str(path), "label": "score", "features": ["a", "b", "c"],
              "stream": True, "chunk_rows": 50}
    model = {"inputs": [{"name": "features", "shape": [3]}], "blocks": [
        {"name": "trunk", "inputs": "features", "layers": [{"type": "dense", "units": 4}]},
        {"name": "v", "inputs": "trunk", "layers": [{"type": "dense", "units": 1}]},
        {"name": "h", "inputs": "trunk", "layers": [{"type": "dense", "units": 1,
                                                     "activation": "sigmoid"}]}],
        "outputs": [{"name": "value", "block": "v"}, {"name": "high", "block": "h"}]}
    training = {"loss": {"value": "mse", "high": "binary_crossentropy"},
                "targets": {"high": {"threshold": 120}}, "epochs": 1, "verbose": 0}
    raw = {"name": "t", "data": {"source": source, "splits": {"test": 0.25},
                                 "preprocessing": [{"type": "zscore"}]},
           "model": model, "training": training}
    spec = kspec.load_spec(raw)
    data = load_training_data(spec)
    head = data.train.head(20)
    np.testing.assert_array_equal(head.y["high"], (head.y["value"] > 120).astype("float32"))
    rows = np.concatenate([c["x"]["features"] for c in data.train.chunks(64)])
    streamed, memory = fit_streamed(spec, data.train), fit_preprocessing(spec, {"features": rows})
    for a, b in zip(streamed["features"][0].make_layer("a").get_weights(),
                    memory["features"][0].make_layer("b").get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    run = kspec.fit(raw, out=tmp_path / "runs")
    assert set(run.metrics["test"]) >= {"value_loss", "high_loss"}

    broken = tmp_path / "broken.csv"
    text = path.read_text().splitlines()
    text[150] = text[150].replace(text[150].split(",")[1], "abc", 1)  # line 151: row 149
    broken.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"broken\.csv: column 'b' is not numeric; row 149 "
                                        r"\(line 151 of the file\) has 'abc'"):
        load_data(kspec.load_spec({**raw, "data": {"source": {**source,
                                                              "path": str(broken)}}}))


def test_streamed_csv_packs_fairness_groups_and_text_labels(tmp_path):
    path = tmp_path / "t.csv"
    frame = _table(path)
    spec = {"name": "fair", "seed": 1,
            "data": {"source": {"type": "csv", "path": str(path), "label": "kind",
                                "features": ["a", "b"], "stream": True, "chunk_rows": 64},
                     "splits": {"validation": 0.25},
                     "groups": {"column": "grp", "map": {"north": 0, "south": 1}}},
            "model": {"inputs": [{"name": "x", "shape": [2]}],
                      "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"loss": {"type": "label_columns", "loss": "binary_crossentropy"},
                         "metrics": [{"type": "subgroup_accuracy", "group": 0},
                                     {"type": "subgroup_accuracy", "group": 1},
                                     "subgroup_accuracy_gap"],
                         "epochs": 1, "verbose": 0}}
    run = kspec.fit(spec, out=tmp_path / "runs")
    assert run.data.meta["class_names"] == ["ant", "bee"]
    assert run.data.meta["group_names"] == ["north", "south"]
    packed = run.data.train.head(30).y
    assert packed.shape == (30, 2)
    rows = packed[:, 1].astype(int)
    assert set(rows.tolist()) <= {0, 1}
    assert {"group_0_accuracy", "group_1_accuracy", "accuracy_gap"} <= set(run.metrics["train"])
    assert len(run.data.train) + len(run.data.validation) == len(frame)


def test_streamed_tfds_trains_under_mock_data(make_spec, tmp_path):
    import tensorflow_datasets as tfds

    spec = make_spec({"source": {"type": "tfds", "name": "mnist", "stream": True,
                                 "split": {"train": "train", "test": "test"}},
                      "splits": {"validation": 0.25},
                      "preprocessing": [{"type": "min_max", "per": "global"}]},
                     inputs=[{"name": "digit", "shape": [28, 28, 1]}], units=10)
    with tfds.testing.mock_data(num_examples=40):
        data = load_data(spec)
        assert type(data.train).__name__ == "TfdsStream"
        assert len(data.train) + len(data.validation) == 40 and len(data.test) == 40
        assert data.meta["class_names"] == [str(i) for i in range(10)]
        run = kspec.fit(spec, out=tmp_path / "runs", epochs=1)
    assert set(run.metrics) == {"train", "validation", "test"}
