"""Sources and splits: CSV, NPZ, DataFrames, arrays; fractions and named splits."""

from __future__ import annotations

import numpy as np
import pytest

from kspec.data.loading import load_data
from kspec.errors import DataError, SpecError


def test_csv_string_labels_become_sorted_codes(make_spec, table):
    path, frame = table
    spec = make_spec({"source": {"type": "csv", "path": str(path), "label": "kind"},
                      "splits": {"validation": 0.25}})
    data = load_data(spec)
    assert data.meta["class_names"] == ["cat", "dog", "eel"]
    assert data.meta["feature_names"] == ["a", "b", "c", "d"]
    assert data.input_shapes() == {"features": (4,)}
    assert len(data.train) == 90 and len(data.validation) == 30 and data.test is None
    # every row keeps its label: recover the row by its first feature
    row = dict(zip(frame["a"].astype("float32"), frame["kind"]))
    for xa, y in zip(data.train.x["features"][:, 0], data.train.y):
        assert data.meta["class_names"][y] == row[xa]


def test_csv_column_groups_feed_named_inputs(make_spec, table):
    path, _ = table
    spec = make_spec({"source": {"type": "csv", "path": str(path), "label": "kind",
                                 "inputs": {"left": ["a", "b"], "right": ["d"]}}},
                     inputs=[{"name": "left"}, {"name": "right"}])
    data = load_data(spec)
    assert data.input_shapes() == {"left": (2,), "right": (1,)}


@pytest.mark.parametrize("source, path, fragment", [
    ({"label": "knid"}, "data.source.label", "no column 'knid'; did you mean 'kind'?"),
    ({"label": "kind", "features": ["a", "zz"]}, "data.source.features[1]", "no column 'zz'"),
    ({"label": "kind", "inputs": {"left": ["a", "q"]}}, "data.source.inputs.left[1]",
     "no column 'q'"),
    ({"label": "kind", "inputs": {"lfet": ["a"]}}, "data.source.inputs.lfet",
     "no input 'lfet'"),
])
def test_csv_missing_columns_are_spec_errors_with_paths(make_spec, table, source, path,
                                                        fragment):
    csv, _ = table
    inputs = [{"name": "left"}] if "inputs" in source else None
    spec = make_spec({"source": {"type": "csv", "path": str(csv), **source}}, inputs=inputs)
    with pytest.raises(SpecError) as e:
        load_data(spec)
    assert e.value.path == path and fragment in str(e.value)
    assert "expected one of" in str(e.value)


def test_csv_non_numeric_cell_names_file_column_and_line(make_spec, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n1,2,0\n3,oops,1\n5,6,0\n")
    spec = make_spec({"source": {"type": "csv", "path": str(path), "label": "y"}})
    with pytest.raises(DataError, match=r"bad\.csv: column 'b' is not numeric; "
                                        r"row 1 \(line 3 of the file\) has 'oops'"):
        load_data(spec)


def test_named_split_files_and_fraction_carved_from_train(make_spec, table, tmp_path):
    path, frame = table
    test_path = tmp_path / "test.csv"
    frame.iloc[:30].to_csv(test_path, index=False)
    spec = make_spec({"source": {"type": "csv", "label": "kind",
                                 "path": {"train": str(path), "test": str(test_path)}},
                      "splits": {"validation": 0.5}})
    data = load_data(spec)
    assert (len(data.train), len(data.validation), len(data.test)) == (60, 60, 30)
    bad = make_spec({"source": {"type": "csv", "label": "kind",
                                "path": {"train": str(path), "test": str(test_path)}},
                     "splits": {"test": 0.2}})
    with pytest.raises(SpecError) as e:
        load_data(bad)
    assert e.value.path == "data.splits.test"


def test_unknown_named_split_is_caught_by_the_schema(make_spec):
    with pytest.raises(SpecError) as e:
        make_spec({"source": {"type": "csv", "label": "y", "path": {"train": "a", "tset": "b"}}})
    assert "data.source.path.tset" in str(e.value) and "unknown split" in str(e.value)


def test_npz_named_inputs_and_missing_key(make_spec, tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(1)
    np.savez(path, img=rng.random((50, 4, 4, 1)), tab=rng.random((50, 3)),
             y=np.arange(50) % 3)
    inputs = [{"name": "image"}, {"name": "table"}]
    spec = make_spec({"source": {"type": "npz", "path": str(path),
                                 "inputs": {"image": "img", "table": "tab"}}}, inputs=inputs)
    assert load_data(spec).input_shapes() == {"image": (4, 4, 1), "table": (3,)}
    spec = make_spec({"source": {"type": "npz", "path": str(path), "x": "pixels"}})
    with pytest.raises(SpecError, match="has no array 'pixels'"):
        load_data(spec)


def test_dataframe_with_label_column_named_in_spec(make_spec, table):
    _, frame = table
    spec = make_spec({"source": {"type": "dataframe", "label": "kind"},
                      "splits": {"test": 0.2, "stratify": True}})
    data = load_data(spec, frame)
    assert data.source == "<DataFrame>" and data.input_shapes() == {"features": (4,)}
    assert np.bincount(data.test.y).tolist() == [8, 8, 8]  # stratified: 20% of 40 each


def test_dataframe_with_separate_labels_and_no_source(make_spec, table):
    _, frame = table
    y = (frame["a"] > 0).astype(int)
    data = load_data(make_spec(), (frame[["a", "b"]], y))
    assert data.input_shapes() == {"features": (2,)}
    with pytest.raises(SpecError, match="label column"):
        load_data(make_spec(), frame[["a", "b"]])


def test_fraction_splits_are_seeded_and_disjoint(make_spec):
    x = np.arange(200, dtype="float32").reshape(100, 2)
    y = np.arange(100) % 2
    spec = make_spec({"splits": {"validation": 0.2, "test": 0.1}}, units=2)
    a, b = load_data(spec, (x, y)), load_data(spec, (x, y))
    assert np.array_equal(a.train.x["features"], b.train.x["features"])
    rows = [tuple(r) for s in a.splits().values() for r in s.x["features"]]
    assert len(rows) == len(set(rows)) == 100
    other = load_data(make_spec({"splits": {"validation": 0.2, "test": 0.1}}, units=2, seed=5),
                      (x, y))
    assert not np.array_equal(a.test.x["features"], other.test.x["features"])


def test_dict_of_named_splits_from_python(make_spec):
    x, y = np.ones((10, 3), "float32"), np.zeros(10, int)
    data = load_data(make_spec(), {"train": (x, y), "test": (x[:4], y[:4])})
    assert len(data.test) == 4 and data.validation is None
    with pytest.raises(DataError, match="unknown split names"):
        load_data(make_spec(), {"train": (x, y), "holdout": (x, y)})


def test_bundled_tabular_and_image_sets(make_spec):
    iris = load_data(make_spec({"source": {"type": "bundled", "name": "iris"}}))
    assert iris.input_shapes() == {"features": (4,)} and len(iris.train) == 150
    digits = load_data(make_spec({"source": {"type": "bundled", "name": "digits"}}, units=10))
    assert digits.input_shapes() == {"features": (8, 8, 1)}


def test_fit_a_dataframe_end_to_end(make_spec, table, tmp_path):
    import kspec

    _, frame = table
    spec = make_spec({"source": {"type": "dataframe", "label": "kind"},
                      "splits": {"validation": 0.2}, "preprocessing": [{"type": "zscore"}]})
    run = kspec.fit(spec, data=frame, out=tmp_path, epochs=1)
    assert run.data.meta["class_names"] == ["cat", "dog", "eel"]
    assert set(run.metrics) == {"train", "validation"}
    with pytest.raises(SpecError) as e:
        kspec.fit(make_spec({"source": {"type": "dataframe", "label": "kind"}}), out=tmp_path)
    assert e.value.path == "data.source.type"


def test_stratify_needs_class_labels(make_spec):
    x = np.zeros((20, 2), "float32")
    spec = make_spec({"splits": {"test": 0.2, "stratify": True}}, loss="mse",
                     layers=[{"type": "dense", "units": 1}])
    with pytest.raises(SpecError) as e:
        load_data(spec, (x, np.linspace(0, 1, 20)))
    assert e.value.path == "data.splits.stratify"
    assert len(load_data(spec, (x, np.arange(20) % 2 * 1.0)).test) == 4  # 0.0/1.0 are classes
