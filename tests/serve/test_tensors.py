"""TF Serving's JSON predict format to and from arrays (no TensorFlow, no server)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from kspec.serve.errors import ServingError
from kspec.serve.tensors import (
    TensorInfo,
    parse_json,
    parse_predict,
    predict_response,
    to_json_values,
)

IMAGE = TensorInfo("image", "float32", (None, 2, 2))
IDS = TensorInfo("ids", "int32", (None, 3))
TEXT = TensorInfo("text", "string", (None,))


def parse(doc, *specs):
    table = {s.name: s for s in specs}
    return parse_predict(doc, lambda name: table)


def error(doc, *specs) -> str:
    with pytest.raises(ServingError) as e:
        parse(doc, *specs)
    assert e.value.status == 400
    return e.value.message


def test_row_format_one_input_stacks_instances():
    req = parse({"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]]}, IMAGE)
    assert req.format == "row" and req.rows == 2 and req.signature_name == ""
    assert req.inputs["image"].dtype == np.float32
    np.testing.assert_array_equal(req.inputs["image"][1], [[5, 6], [7, 8.5]])


def test_row_format_objects_per_instance_for_several_inputs():
    rows = [{"image": [[1, 2], [3, 4]], "ids": [1, 2, 3]},
            {"image": [[0, 0], [0, 0]], "ids": [4, 5, 6]}]
    req = parse({"instances": rows, "signature_name": "serving_default"}, IMAGE, IDS)
    assert req.signature_name == "serving_default"
    assert req.inputs["ids"].dtype == np.int32 and req.inputs["ids"].tolist()[1] == [4, 5, 6]


def test_columnar_format_named_or_bare():
    req = parse({"inputs": {"image": [[[1, 2], [3, 4]]], "ids": [[1, 2, 3]], "extra": 1}},
                IMAGE, IDS)
    assert req.format == "columnar" and req.rows == 1  # extra keys ignored, as TF Serving does
    assert parse({"inputs": [[[1, 2], [3, 4]]]}, IMAGE).inputs["image"].shape == (1, 2, 2)


def test_columnar_inputs_may_differ_in_rows():
    other = TensorInfo("other", "float32", (None,))
    req = parse({"inputs": {"image": [[[1, 2], [3, 4]]], "other": [1, 2, 3]}}, IMAGE, other)
    assert req.rows is None


@pytest.mark.parametrize("doc, specs, message", [
    ({"instances": [[[1, 2], [3, 4]]], "inputs": []}, [IMAGE], "only one of"),
    ({"instances": {"image": 1}}, [IMAGE], "Expecting 'instances' to be a list"),
    ({"instances": []}, [IMAGE], "No values in 'instances' array"),
    ({"signature_name": 1, "instances": [1]}, [IMAGE], "must be a string value"),
    ({"instances": [[1, 2, 3]]}, [IMAGE, IDS], "the signature has 2 inputs (ids, image)"),
    ({"inputs": [[1, 2, 3]]}, [IMAGE, IDS], "send an object with one key per input"),
    ({"instances": [{"ids": [1, 2, 3], "img": [[1, 2], [3, 4]]}]}, [IMAGE, IDS],
     "instances[0]: keys must be the signature's inputs ['ids', 'image']; unknown: ['img']; "
     "missing: ['image']"),
    ({"instances": [{"ids": [1, 2, 3], "image": [[1, 2], [3, 4]]}, [1]]}, [IMAGE, IDS],
     "instances[1]: expecting an object"),
    ({"inputs": {"image": [[[1, 2], [3, 4]]]}}, [IMAGE, IDS],
     "Missing named input: ids in 'inputs' object (expects ['ids', 'image']; received: "
     "['image'])"),
    ({"instances": [[[1, 2], [3, 4, 5]]]}, [IMAGE],
     "input 'image' expects dtype float32 and shape [-1, 2, 2]; received nested lists of "
     "unequal lengths"),
    ({"instances": [[1, 2, 3, 4]]}, [IMAGE],
     "instances: input 'image' expects dtype float32 and shape [-1, 2, 2] (-1: any size); "
     "received shape [1, 4]"),
    ({"inputs": [[1, 2], [3, 4]]}, [IMAGE], "received shape [2, 2]"),
    ({"inputs": [[[True, False], [True, True]]]}, [IMAGE], "received booleans (first: true)"),
    ({"inputs": [[1, 2, None]]}, [IDS], "received objects, nulls or mixed values"),
    ({"inputs": [[1, 2, 3.5]]}, [IDS], "expects dtype int32 and shape [-1, 3]; received "
     "decimal numbers (first: 1.0)"),
    ({"inputs": [[1, 2, 2 ** 40]]}, [IDS], "value 1099511627776 is out of range for int32"),
    ({"inputs": [1, 2]}, [TEXT], "input 'text' expects dtype string and shape [-1]; received 1"),
    ({"inputs": [{"b64": "***"}]}, [TEXT], "unable to base64 decode"),
    ({"inputs": [["a"], "b"]}, [TEXT], "nested lists of unequal lengths"),
])
def test_bad_requests_name_the_input_and_what_it_expects(doc, specs, message):
    assert message in error(doc, *specs)


def test_strings_and_b64_binary_values():
    raw = bytes(range(256))
    doc = {"inputs": ["zip 02139", {"b64": base64.b64encode(raw).decode()}]}
    values = parse(doc, TEXT).inputs["text"]
    assert values.dtype == object and values.tolist() == [b"zip 02139", raw]


@pytest.mark.parametrize("body, message", [
    (b"", "JSON Parse error: The document is empty"),
    (b'{"instances": [1,', "JSON Parse error: Expecting value at offset: 17"),
    (b"\xff\xfe{", "JSON Parse error"),
    (b"[" * 100_000, "JSON Parse error"),
    (b"[1, 2]", "JSON Value: [1, 2] Is not object"),
])
def test_malformed_json(body, message):
    with pytest.raises(ServingError) as e:
        parse_json(body)
    assert e.value.status == 400 and message in e.value.message


def test_nan_and_infinity_are_read_and_written():
    doc = parse_json(b'{"inputs": [NaN, Infinity, -Infinity, 1]}')
    values = parse(doc, TensorInfo("x", "float32", (None,))).inputs["x"]
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf
    out = json.dumps(predict_response({"y": values}, "columnar"))
    assert out == '{"outputs": [NaN, Infinity, -Infinity, 1.0]}'


def test_one_output_is_a_bare_list_several_are_objects():
    y = np.array([[0.25, 0.75], [1.0, 0.0]], np.float32)
    cls = np.array([1, 0], np.int64)
    assert predict_response({"y": y}, "row") == {"predictions": [[0.25, 0.75], [1.0, 0.0]]}
    assert predict_response({"y": y}, "columnar") == {"outputs": [[0.25, 0.75], [1.0, 0.0]]}
    assert predict_response({"y": y, "y_class": cls}, "row") == {"predictions": [
        {"y": [0.25, 0.75], "y_class": 1}, {"y": [1.0, 0.0], "y_class": 0}]}
    assert predict_response({"y": y, "y_class": cls}, "columnar") == {
        "outputs": {"y": [[0.25, 0.75], [1.0, 0.0]], "y_class": [1, 0]}}


def test_row_format_needs_outputs_with_a_batch_dimension():
    with pytest.raises(ServingError, match="no shape information"):
        predict_response({"y": np.float32(1), "z": np.zeros(2)}, "row")
    assert predict_response({"y": np.float32(1.5)}, "columnar") == {"outputs": 1.5}


def test_float32_outputs_use_the_shortest_text_that_reads_back_the_same():
    values = np.array([0.2, 1 / 3, 1e-8, 3e38], np.float32)
    text = json.dumps(to_json_values("y", values))
    assert text == "[0.2, 0.33333334, 1e-08, 3e+38]"  # not 0.20000000298023224
    np.testing.assert_array_equal(np.asarray(json.loads(text), np.float32), values)


def test_string_outputs_as_text_and_bytes_outputs_as_b64():
    words = np.array([b"seven", "\u00e9t\u00e9".encode()], dtype=object)
    assert to_json_values("label", words) == ["seven", "\u00e9t\u00e9"]
    assert to_json_values("image_bytes", np.array([b"\x00\xff"], dtype=object)) == [
        {"b64": "AP8="}]
