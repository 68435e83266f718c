"""Reading prediction inputs (no model needed): CSV columns per input, errors that say where."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kspec.errors import DataError
from kspec.exporter.predict import Predictor, format_predictions, read_inputs, write_predictions


def _predictor(inputs, spec=None):
    return Predictor(Path("."), "keras", inputs, lambda x: {}, spec)


def test_csv_columns_follow_the_specs_inputs_mapping(tmp_path):
    (tmp_path / "rows.csv").write_text("y,a1,a2,b1\n0,1.5,2.5,7\n1,3.5,4.5,8\n")
    spec = {"data": {"source": {"type": "csv", "label": "y",
                                "inputs": {"left": ["a2", "a1"], "right": ["b1"]}}}}
    predictor = _predictor({"left": {"dtype": "float32", "shape": [None, 2]},
                            "right": {"dtype": "int64", "shape": [None, 1]}}, spec)
    got = read_inputs([tmp_path / "rows.csv"], predictor)
    np.testing.assert_array_equal(got["left"], [[2.5, 1.5], [4.5, 3.5]])
    assert got["right"].dtype == np.int64 and got["right"].tolist() == [[7], [8]]


def test_csv_skips_the_label_column_of_a_single_input_spec(tmp_path):
    (tmp_path / "rows.csv").write_text("f1,label,f2\n1,0,2\n3,1,4\n")
    spec = {"data": {"source": {"type": "csv", "label": "label"}}}
    predictor = _predictor({"x": {"dtype": "float32", "shape": [None, 2]}}, spec)
    assert read_inputs([tmp_path / "rows.csv"], predictor)["x"].tolist() == [[1, 2], [3, 4]]


def test_missing_columns_and_files_are_named(tmp_path):
    (tmp_path / "rows.csv").write_text("f1\n1\n")
    spec = {"data": {"source": {"type": "csv", "label": None, "features": ["f1", "f9"]}}}
    predictor = _predictor({"x": {"dtype": "float32", "shape": [None, 2]}}, spec)
    with pytest.raises(DataError, match=r"columns \['f9'\] for input 'x' are missing"):
        read_inputs([tmp_path / "rows.csv"], predictor)
    with pytest.raises(DataError, match="nope.csv: file not found"):
        read_inputs([tmp_path / "nope.csv"], predictor)
    (tmp_path / "x.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="unsupported input file type '.parquet'"):
        read_inputs([tmp_path / "x.parquet"], predictor)


def test_images_need_an_image_input(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), "uint8")).save(tmp_path / "a.png")
    predictor = _predictor({"x": {"dtype": "float32", "shape": [None, 16]}})
    with pytest.raises(DataError, match="image files need a model with one image input"):
        read_inputs([tmp_path / "a.png"], predictor)
    rgb = _predictor({"img": {"dtype": "float32", "shape": [None, 6, 5, 3]}})
    got = read_inputs([tmp_path / "a.png"], rgb)["img"]
    assert got.shape == (1, 6, 5, 3)  # resized to height 6, width 5, converted to RGB


def test_written_predictions_round_trip(tmp_path):
    outputs = {"p": np.array([[0.1, 0.9], [0.8, 0.2]], "float32"),
               "p_class": np.array([1, 0], "int64")}
    write_predictions(outputs, tmp_path / "o.csv")
    text = (tmp_path / "o.csv").read_text().splitlines()
    assert text[0] == "row,p[0],p[1],p_class" and text[1].endswith(",1")
    table = format_predictions(outputs)
    assert table.splitlines()[0].split() == ["row", "p_class", "p[0]", "p[1]"]
    with pytest.raises(DataError, match="unsupported output type '.txt'"):
        write_predictions(outputs, tmp_path / "o.txt")


def test_class_names_from_the_metadata_label_the_classes():
    from kspec.exporter.predict import add_labels

    outputs = {"kind_class": np.array([2, 0]), "kind": np.zeros((2, 3), "float32")}
    labelled = add_labels(outputs, ["cat", "dog", "owl"])
    assert labelled["kind_label"].tolist() == ["owl", "cat"]
    assert format_predictions(labelled).splitlines()[1].split()[:3] == ["0", "owl", "2"]
    # Per-output names for multi-output models; names that do not fit are not guessed.
    assert add_labels(outputs, {"kind": ["a", "b", "c"]})["kind_label"].tolist() == ["c", "a"]
    assert "kind_label" not in add_labels(outputs, ["only", "two"])
    assert "kind_label" not in add_labels(outputs, None)


PROBS = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], "float32")


@pytest.mark.parametrize("loss, outputs, want", [
    ("sparse_categorical_crossentropy", {"output": PROBS}, [1, 0]),
    ({"type": "cce", "label_smoothing": 0.1}, {"output": PROBS}, [1, 0]),  # an alias
    ("binary_crossentropy", {"output": np.array([[0.2], [0.9]], "float32")}, [0, 1]),
    ({"type": "bce", "from_logits": True}, {"output": np.array([[-0.5], [0.1]], "float32")},
     [0, 1]),
    ({"type": "label_columns", "loss": "bce"}, {"output": np.array([[0.7], [0.4]])}, [1, 0]),
    ("mse", {"output": PROBS}, None),  # not a classifier: no class column
    ("sparse_categorical_crossentropy", {"output": PROBS, "output_class": np.array([2, 2])},
     [2, 2]),  # an export that serves its own class column keeps it
])
def test_classifier_outputs_get_a_class_column(loss, outputs, want):
    from kspec.exporter.predict import add_classes

    got = add_classes(outputs, {"training": {"loss": loss}})
    if want is None:
        assert "output_class" not in got
    else:
        assert got["output_class"].tolist() == want and got["output_class"].dtype == np.int64


def test_per_output_losses_and_class_names_name_each_class():
    from kspec.exporter.predict import predictions

    spec = {"training": {"loss": {"kind": "sparse_categorical_crossentropy", "size": "mse"}}}
    run = lambda inputs: {"kind": PROBS, "size": np.array([[1.5], [2.5]])}  # noqa: E731
    predictor = Predictor(Path("."), "keras", {}, run, spec, {"class_names": ["a", "b", "c"]})
    out = predictions(predictor, {})
    assert out["kind_class"].tolist() == [1, 0] and out["kind_label"].tolist() == ["b", "a"]
    assert "size_class" not in out and "size_label" not in out
    assert format_predictions(out).splitlines()[0].split()[:3] == ["row", "kind_label",
                                                                   "kind_class"]
