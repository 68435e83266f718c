"""Bad data is refused before training: the message names source, feature and a row."""

from __future__ import annotations

import numpy as np
import pytest

from kspec.data.sources import load_data
from kspec.errors import DataError


def _xy(n=40, d=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype("float32"), np.arange(n) % 3


def test_nan_names_the_feature_column_and_row(make_spec, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n5,,0\n")  # empty cell -> NaN in column b
    spec = make_spec({"source": {"type": "csv", "path": str(path), "label": "y"}})
    with pytest.raises(DataError) as e:
        load_data(spec)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "feature 'features'" in msg
    assert "row 2 (line 4 of the file), column 'b' is nan" in msg


def test_inf_in_arrays_gives_the_row(make_spec):
    x, y = _xy()
    x[17, 2] = np.inf
    with pytest.raises(DataError, match=r"<arrays>: feature 'features' has 1 "
                                        r"non-finite value\(s\); row 17, element \(2,\) is inf$"):
        load_data(make_spec(), (x, y))


def test_nan_label(make_spec):
    x, _ = _xy()
    y = np.zeros(40)
    y[3] = np.nan
    with pytest.raises(DataError, match="the label has 1 non-finite.*row 3"):
        load_data(make_spec(loss="mse", layers=[{"type": "dense", "units": 1}]), (x, y))


def test_label_outside_the_output_units(make_spec):
    x, y = _xy()
    y[11] = 3  # the model has 3 output units: classes 0..2
    with pytest.raises(DataError, match=r"label of row 11 is 3, outside the 3 classes \(0\.\.2\) "
                                        r"of the model's output units \(1 rows outside\)"):
        load_data(make_spec(), (x, y))


def test_label_outside_declared_classes(make_spec):
    x, y = _xy()
    spec = make_spec({"classes": 2}, loss="categorical_crossentropy",
                     layers=[{"type": "dense", "units": 2, "activation": "softmax"}])
    with pytest.raises(DataError, match="label of row 2 is 2.*data.classes"):
        load_data(spec, (x, y))


def test_binary_labels_must_be_zero_or_one(make_spec):
    x, _ = _xy()
    y = np.zeros(40)
    y[5] = 2
    spec = make_spec(loss="binary_crossentropy",
                     layers=[{"type": "dense", "units": 1, "activation": "sigmoid"}])
    with pytest.raises(DataError, match="label of row 5 is 2.0.*expects labels in \\[0, 1\\]"):
        load_data(spec, (x, y))


def test_shape_mismatch_with_declared_input(make_spec):
    x, y = _xy(d=5)
    spec = make_spec(inputs=[{"name": "features", "shape": [4]}])
    with pytest.raises(DataError, match=r"feature 'features' has shape \[5\] per row.*expects "
                                        r"\[4\]"):
        load_data(spec, (x, y))


def test_missing_input_in_a_dict(make_spec):
    x, y = _xy()
    spec = make_spec(inputs=[{"name": "a"}, {"name": "b"}])
    with pytest.raises(DataError, match=r"no data for \['b'\]"):
        load_data(spec, ({"a": x}, y))


def test_empty_split(make_spec):
    x, y = _xy()
    with pytest.raises(DataError, match=r"\(test split\): the split is empty"):
        load_data(make_spec(), {"train": (x, y), "test": (x[:0], y[:0])})


def test_row_count_mismatch(make_spec):
    x, y = _xy()
    with pytest.raises(DataError, match="y has 39 rows but the features have 40"):
        load_data(make_spec(), (x, y[:-1]))


def test_labels_of_each_output_are_checked_against_that_output(make_spec):
    from kspec.validation import load_spec

    x, y = _xy()
    spec = load_spec({
        "name": "two_heads", "model": {
            "inputs": [{"name": "features", "shape": [3]}],
            "blocks": [{"name": "trunk", "inputs": ["features"],
                        "layers": [{"type": "dense", "units": 4}]},
                       {"name": "kind", "inputs": ["trunk"],
                        "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
                       {"name": "flag", "inputs": ["trunk"],
                        "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]}],
            "outputs": [{"name": "kind"}, {"name": "flag"}]},
        "training": {"optimizer": "adam",
                     "loss": {"kind": "sparse_categorical_crossentropy",
                              "flag": "binary_crossentropy"}}})
    flag = (y == 1).astype(float)
    load_data(spec, (x, {"kind": y, "flag": flag}))  # valid
    bad = y.copy()
    bad[7] = 5
    with pytest.raises(DataError, match="label of output 'kind' of row 7 is 5"):
        load_data(spec, (x, {"kind": bad, "flag": flag}))
    flag[9] = -1.0
    with pytest.raises(DataError, match="label of output 'flag' of row 9 is -1.0"):
        load_data(spec, (x, {"kind": y, "flag": flag}))


def test_label_checked_against_the_class_names_of_the_source(make_spec, tmp_path):
    import kspec.data.sources as sources

    x, y = _xy()
    y[4] = 7
    spec = make_spec(layers=[{"type": "flatten"}])  # no units to compare with
    with pytest.raises(DataError, match="row 4 is 7, outside the 3 classes .*source's class"):
        sources.check_labels(spec, {"all": sources.Split({"features": x}, y)}, "src",
                             {"class_names": ["a", "b", "c"]})
