"""Categorical columns and text labels: fitted on the training split, served as raw strings."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

import kspec
from kspec.data.loading import load_data
from kspec.data.preprocess import input_layers
from kspec.errors import DataError, SpecError

COLORS = ["red", "green", "blue"]


def _frame(n=240, seed=0, colors=COLORS):
    """Three classes told apart by ``color`` (90% of rows), with one uninformative number."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    color = rng.choice(colors, n)
    label = np.array([f"k{colors.index(c) % 3}" for c in color], dtype=object)
    noisy = rng.random(n) < 0.1
    label[noisy] = rng.choice(["k0", "k1", "k2"], int(noisy.sum()))
    return pd.DataFrame({"noise": rng.normal(size=n).round(3), "color": color,
                         "zip": rng.choice([2139, 10001], n), "kind": label})


def _write(frame, path):
    frame.to_csv(path, index=False)
    return str(path)


def _data(path, categorical, **source):
    return {"source": {"type": "csv", "path": path, "label": "kind", **source},
            "categorical": categorical}


def _lookup_column(layers, name, value):
    """The one-hot column a raw value lights up in the model's lookup for ``name``."""
    import keras

    (join,) = [step for step in layers if hasattr(step, "side_inputs")]
    x = keras.Input((1,), name="features")
    joined = join(x)
    model = keras.Model([x, *join.side_inputs], joined)
    feed = {"features": np.zeros((1, 1), "float32")}
    feed.update({t.name: np.array([["?"]], object) for t in join.side_inputs})
    feed[name] = np.array([[value]], object)
    return int(np.argmax(np.asarray(model(feed))[0, 1:]))


def test_vocabulary_comes_from_the_training_split_only(make_spec, tmp_path):
    train = _frame(seed=1)
    test = _frame(n=30, seed=2, colors=["red", "purple"])  # purple: only in the test file
    path = {"train": _write(train, tmp_path / "train.csv"),
            "test": _write(test, tmp_path / "test.csv")}
    spec = make_spec(_data(path, {"color": "one_hot"}, features=["noise"]))
    data = load_data(spec)
    assert data.test.x["color"].dtype == object and data.test.x["color"].shape == (30, 1)
    assert "purple" in set(data.test.x["color"][:, 0])
    layers = input_layers(spec, data)["features"]
    vocab = data.meta["vocabularies"]["color"]
    assert sorted(vocab) == sorted(COLORS)  # counted on train only
    # Column 0 of the one-hot code is the out-of-vocabulary bucket; numeric column first.
    assert _lookup_column(layers, "color", "purple") == 0
    assert _lookup_column(layers, "color", vocab[0]) == 1


def test_min_count_and_max_tokens_send_rare_categories_to_the_oov_bucket():
    from kspec.data.categorical import fit_vocabulary
    from kspec.spec.data import Categorical

    values = np.array([["a"]] * 5 + [["b"]] * 3 + [["c"]] * 3 + [["d"]], object)
    assert fit_vocabulary(values, Categorical()) == ["a", "b", "c", "d"]
    assert fit_vocabulary(values, Categorical(min_count=2)) == ["a", "b", "c"]
    assert fit_vocabulary(values, Categorical(max_tokens=2)) == ["a", "b"]


@pytest.fixture(scope="module")
def color_run(tmp_path_factory):
    """A run on a CSV with a numeric, a one-hot and an embedded (zip code) column."""
    tmp = tmp_path_factory.mktemp("color")
    path = _write(_frame(n=300), tmp / "colors.csv")
    spec = {
        "name": "colors", "seed": 0,
        "data": {"source": {"type": "csv", "path": path, "label": "kind"},
                 "categorical": {"color": "one_hot",
                                 "zip": {"encoding": "embedding", "dim": 2}},
                 "splits": {"test": 0.25, "stratify": True},
                 "preprocessing": [{"type": "zscore"}]},
        "model": {"inputs": [{"name": "numbers"}],
                  "layers": [{"type": "dense", "units": 16, "activation": "relu"},
                             {"type": "dense", "units": 3, "activation": "softmax"}]},
        "training": {"optimizer": {"type": "adam", "learning_rate": 0.02},
                     "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                     "batch_size": 32, "epochs": 25, "verbose": 0},
    }
    return kspec.fit(spec, out=str(tmp / "runs")), tmp


def _raw_rows():
    import tensorflow as tf

    return {"numbers": tf.constant([[0.1], [-1.0], [0.5], [2.0]]),
            "color": tf.constant([["red"], ["green"], ["blue"], ["mauve"]]),
            "zip": tf.constant([["2139"], ["10001"], ["2139"], ["99999"]])}


def test_mixed_csv_trains_well_above_chance(color_run):
    run, _ = color_run
    assert [t.name for t in run.model.inputs] == ["numbers", "color", "zip"]
    assert run.data.meta["class_names"] == ["k0", "k1", "k2"]
    # Numbers in a categorical column are text: the zip codes' vocabulary holds strings.
    assert sorted(run.data.meta["vocabularies"]["zip"]) == ["10001", "2139"]
    assert run.metrics["test"]["accuracy"] > 0.8  # chance is 1/3; color decides 90%


def test_saved_model_reloads_in_safe_mode_on_raw_strings(color_run):
    import keras

    run, _ = color_run
    loaded = keras.saving.load_model(run.run_dir / "model.keras", safe_mode=True)
    want = np.asarray(run.model(_raw_rows()))
    np.testing.assert_allclose(np.asarray(loaded(_raw_rows())), want, atol=1e-6)
    # red, green, blue: the classes their color stands for.
    assert list(np.argmax(want[:3], axis=1)) == [0, 1, 2]


def test_export_serves_raw_strings(color_run):
    import tensorflow as tf

    run, tmp = color_run
    result = kspec.export(run.run_dir, out=str(tmp / "models"))
    assert result.check.passed
    inputs = result.signature["inputs"]
    assert inputs["color"] == {"dtype": "string", "shape": [None, 1]}
    assert inputs["zip"]["dtype"] == "string" and inputs["numbers"]["dtype"] == "float32"
    serve = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    served = serve(**{k: tf.constant(v) for k, v in _raw_rows().items()})["output"]
    np.testing.assert_allclose(served.numpy(), np.asarray(run.model(_raw_rows())), atol=1e-5)


def test_text_labels_round_trip_to_class_names(make_spec, tmp_path):
    frame = _frame(n=60)
    spec = make_spec({**_data(_write(frame, tmp_path / "t.csv"), {"color": "one_hot"}),
                      "splits": {"shuffle": False}})
    data = load_data(spec)
    names = data.meta["class_names"]
    assert names == sorted(set(frame["kind"]))
    assert data.train.y.dtype == np.int64
    assert [names[i] for i in data.train.y] == list(frame["kind"])


def test_label_unseen_in_training_is_a_data_error(make_spec, tmp_path):
    train, test = _frame(n=60, seed=1), _frame(n=20, seed=2)
    test.loc[7, "kind"] = "k9"
    path = {"train": _write(train, tmp_path / "a.csv"), "test": _write(test, tmp_path / "b.csv")}
    with pytest.raises(DataError, match=r"b\.csv: the label 'kind' of row 7 \(line 9 of the "
                                        r"file\) is 'k9', a class the training data does not"):
        load_data(make_spec(_data(path, {"color": "one_hot"})))


def test_missing_cells_are_an_error_or_a_named_category(make_spec, tmp_path):
    frame = _frame(n=40)
    frame.loc[5, "color"] = None
    path = _write(frame, tmp_path / "gaps.csv")
    expected = (r"gaps\.csv: categorical column 'color' is empty in "
                r"row 5 \(line 7 of the file\).*categorical\.color\.missing")
    with pytest.raises(DataError, match=expected):
        load_data(make_spec(_data(path, {"color": "one_hot"})))
    data = load_data(make_spec({**_data(path, {"color": {"missing": "none"}}),
                                "splits": {"shuffle": False}}))
    assert data.train.x["color"][5, 0] == "none"


@pytest.mark.parametrize("data, where, message", [
    ({"categorical": {"colr": "one_hot"}}, "data.categorical.colr",
     "has no column 'colr'; did you mean 'color'?"),
    ({"categorical": {"color": "one_hot"}, "features": ["noise", "color"]},
     "data.categorical.color", "also a numeric feature of input 'features'"),
    ({"categorical": {"color": {"join": "feature"}}}, "data.categorical.color.join",
     "no input 'feature'; did you mean 'features'?"),
])
def test_spec_errors_name_the_place(make_spec, tmp_path, data, where, message):
    path = _write(_frame(n=30), tmp_path / "c.csv")
    categorical = data.pop("categorical")
    spec = make_spec(_data(path, categorical, **data))
    with pytest.raises(SpecError) as err:
        input_layers(spec, load_data(spec))
    assert err.value.path == where and message in str(err.value)


def test_categorical_needs_a_table_source(make_spec):
    with pytest.raises(SpecError, match=r"data\.categorical: the bundled source has no text "
                                        "columns"):
        make_spec({"source": {"type": "bundled", "name": "iris"},
                   "categorical": {"x": "one_hot"}})
    with pytest.raises(SpecError, match=r"data\.categorical\.x\.dim: only an embedding"):
        make_spec({"categorical": {"x": {"encoding": "one_hot", "dim": 3}}})
    spec = make_spec({"categorical": {"x": "one_hot"}})
    with pytest.raises(SpecError, match=r"data\.categorical: <arrays>: arrays have no named"):
        load_data(spec, (np.zeros((4, 2)), np.zeros(4)))


def test_dataframe_source_with_categorical_columns(make_spec):
    frame = _frame(n=90).drop(columns="color")
    spec = make_spec({"source": {"type": "dataframe", "label": "kind"},
                      "categorical": {"zip": {"input": "zip_code"}}})
    data = load_data(spec, frame)
    assert set(data.train.x) == {"features", "zip_code"}
    assert data.meta["feature_names"] == ["noise"]
    assert set(data.train.x["zip_code"][:, 0]) == {"2139", "10001"}  # integers read as text


def test_bundled_passengers_table_is_the_generators_output():
    from kspec.datasets.make_passengers import make_passengers

    text = resources.files("kspec.datasets").joinpath("passengers.csv").read_text()
    assert text == make_passengers()


def test_predict_reads_categorical_columns_of_a_csv_as_text(tmp_path):
    from kspec.exporter.predict import Predictor, read_inputs

    (tmp_path / "rows.csv").write_text("age,port,deck,zip\n30,S,,02139\n41,Q,B,10001\n")
    spec = {"data": {"source": {"type": "csv", "label": "outcome"},
                     "categorical": {"port": "one_hot", "zip": "one_hot",
                                     "deck": {"encoding": "embedding", "missing": "unknown"}}}}
    text = {"dtype": "string", "shape": [None, 1]}
    inputs = {"numbers": {"dtype": "float32", "shape": [None, 1]},
              "port": text, "deck": text, "zip": text}
    got = read_inputs([tmp_path / "rows.csv"],
                      Predictor(tmp_path, "keras", inputs, lambda x: {}, spec))
    assert got["numbers"].tolist() == [[30.0], [41.0]]
    assert got["deck"].tolist() == [["unknown"], ["B"]]
    assert got["zip"].tolist() == [["02139"], ["10001"]]


def test_an_empty_text_label_is_named(make_spec, tmp_path):
    frame = _frame(n=30)
    frame.loc[4, "kind"] = None
    path = _write(frame, tmp_path / "e.csv")
    with pytest.raises(DataError, match=r"e\.csv: the label 'kind' of row 4 \(line 6 of the "
                                        r"file\) is empty \(1 rows like it\)"):
        load_data(make_spec(_data(path, {"color": "one_hot"})))
