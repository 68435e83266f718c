"""Bad data is refused before training: the message names source, feature and a row."""

from __future__ import annotations

import numpy as np
import pytest

from kspec.data.loading import load_data
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
    import kspec.data.loading as sources

    x, y = _xy()
    y[4] = 7
    spec = make_spec(layers=[{"type": "flatten"}])  # no units to compare with
    with pytest.raises(DataError, match="row 4 is 7, outside the 3 classes .*source's class"):
        sources.check_labels(spec, {"all": sources.Split({"features": x}, y)}, "src",
                             {"class_names": ["a", "b", "c"]})


# -- broken files: one line naming the file, what is wrong and where -------------------------

def _csv_spec(make_spec, path, **source):
    return make_spec({"source": {"type": "csv", "path": str(path), "label": "y", **source}})


BROKEN_CSV = {
    "empty": (b"", "the file is empty (expected a header line naming the columns)"),
    "blank lines": (b"\n\n", "the file is empty"),
    "extra field": (b"a,b,y\n1,2,0\n3,4,1,9\n5,6,0\n",
                    "row 1 (line 3 of the file) has 4 fields but the header has 3"),
    # pandas would silently take column 'a' as an index and shift every column
    "extra field in the first row": (b"a,b,y\n1,2,0,9\n3,4,1\n5,6,0\n",
                                     "row 0 (line 2 of the file) has 4 fields"),
    "unclosed quote": (b'a,b,y\n1,2,0\n3,"4,1\n5,6,0\n',
                       "a quoted value in row 1 (line 3 of the file) is never closed"),
    "latin-1": ("a,b,y\n1,2,0\n3,4,caf\xe9\n".encode("latin-1"),
                "not utf-8 text: byte 19 in row 1 (line 3 of the file) is 0xe9; save the "
                "file as UTF-8, or name its encoding in data.source.encoding"),
    "non-numeric cell": (b"a,b,y\n1,2,0\n3,oops,1\n",
                         "column 'b' is not numeric; row 1 (line 3 of the file) has 'oops'"),
}


@pytest.mark.parametrize("case", list(BROKEN_CSV))
def test_broken_csv_files_fail_before_training_with_file_and_row(make_spec, tmp_path, case):
    content, expected = BROKEN_CSV[case]
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_data(_csv_spec(make_spec, path))
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value), info.value
    assert "\n" not in str(info.value)


def test_a_named_encoding_reads_latin1_and_an_unknown_one_is_a_spec_error(make_spec, tmp_path):
    from kspec.errors import SpecError

    path = tmp_path / "t.csv"
    path.write_bytes("a,b,y\n1,2,café\n3,4,thé\n5,6,café\n".encode("latin-1"))
    data = load_data(_csv_spec(make_spec, path, encoding="latin-1"))
    assert data.meta["class_names"] == ["café", "thé"]
    with pytest.raises(SpecError) as info:
        load_data(_csv_spec(make_spec, path, encoding="latin-9x"))
    assert info.value.path == "data.source.encoding"
    assert "unknown text encoding 'latin-9x'" in str(info.value)


def _npz_spec(make_spec, path):
    return make_spec({"source": {"type": "npz", "path": str(path), "x": "x", "y": "y"}})


def _broken_npz(path, case):
    import pickle

    x, y = np.zeros((4, 2), "float32"), np.arange(4) % 3
    if case == "object array":
        np.savez(path, x=np.array([[1.0, 2.0], [3.0]], dtype=object), y=y[:2])
    elif case == "text features":
        np.savez(path, x=np.array([["1", "2"], ["3", "n/a"], ["5", "6"]]), y=y[:3])
    elif case == "numbers written as text":
        np.savez(path, x=np.array([["1", "2"], ["3", "4"]]), y=y[:2])
    elif case == "text labels":
        np.savez(path, x=x, y=np.array(["cat", "dog", "cat", "eel"]))
    elif case == "not a zip":
        path.write_text("x,y\n1,2\n")
    elif case == "a single .npy":
        with open(path, "wb") as f:
            np.save(f, x)
    elif case == "a pickle":
        path.write_bytes(pickle.dumps({"x": x}))
    elif case == "truncated":
        np.savez(path, x=np.ones((200, 2), "float32"), y=np.arange(200) % 3)
        path.write_bytes(path.read_bytes()[:1500])
    elif case == "empty":
        path.write_bytes(b"")


BROKEN_NPZ = {
    "object array": "array 'x' holds Python objects (dtype=object, stored as a pickle); kspec "
                    "loads arrays with allow_pickle=False",
    "text features": "array 'x' (input 'features') holds text (dtype <U3), not numbers; row 1 "
                     "is 'n/a'",
    "numbers written as text": "holds text (dtype <U1), not numbers; row 0 is '1' (numbers "
                               "written as text: convert them with .astype('float32'))",
    "text labels": "the label (array 'y') holds text (dtype <U3); row 0 is 'cat': give class "
                   "indices",
    "not a zip": "not an NPZ archive (a zip of .npy arrays written by np.savez; it starts with "
                 "b'x,y\\n')",
    "a single .npy": "a single .npy array, not an NPZ archive of named arrays",
    "a pickle": "not an NPZ archive (a zip of .npy arrays written by np.savez; a Python "
                "pickle, which kspec never loads)",
    "truncated": "truncated or corrupt NPZ archive",
    "empty": "the file is empty (0 bytes), not an NPZ archive",
}


@pytest.mark.parametrize("case", list(BROKEN_NPZ))
def test_broken_npz_files_fail_before_training_with_file_and_array(make_spec, tmp_path, case):
    path = tmp_path / "d.npz"
    _broken_npz(path, case)
    with pytest.raises(DataError) as info:
        load_data(_npz_spec(make_spec, path))
    assert str(info.value).startswith(f"{path}: "), info.value
    assert BROKEN_NPZ[case] in str(info.value), info.value


def test_text_features_from_python_are_refused_unless_the_input_takes_strings(make_spec):
    x = np.array([["1.5", "2"], ["x", "4"], ["5", "6"]])
    with pytest.raises(DataError, match=r"<arrays>: feature 'features' holds text \(dtype "
                                        r"<U3\), not numbers; row 1 is 'x'"):
        load_data(make_spec(), (x, np.arange(3)))
    mixed = np.array([[1.5, 2], [3, 4], [5, 6]], dtype=object)
    with pytest.raises(DataError, match=r"holds Python objects \(dtype object\), not numbers; "
                                        r"row 0 is 1\.5 \(numbers stored as Python objects"):
        load_data(make_spec(), (mixed, np.arange(3)))
    text = make_spec(inputs=[{"name": "features", "dtype": "string", "shape": [2]}])
    from kspec.data.checks import check_inputs
    from kspec.data.split import Split

    check_inputs(text, {"all": Split({"features": x}, np.arange(3))}, "<arrays>")  # accepted


def test_every_row_message_uses_one_phrase():
    """Rows count from 0 in the source as given; files add the line an editor shows."""
    from kspec.data.checks import row_phrase

    assert row_phrase(0, 2) == "row 0 (line 2 of the file)"
    assert row_phrase(5) == row_phrase(5, 0) == "row 5"
