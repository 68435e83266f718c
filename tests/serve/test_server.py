"""A live `kspec serve`: TF Serving's status, metadata and predict answers, and its errors."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from tests.serve.helpers import call, digit_rows, multi_rows, signature_outputs

CLOSE = {"rtol": 1e-6, "atol": 1e-7}  # the JSON floats read back to the same float32


def _ok(version: str) -> dict:
    return {"version": version, "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}


def test_status_lists_loaded_versions_newest_first(server):
    assert call(f"{server.url}/v1/models/digits") == (
        200, {"model_version_status": [_ok("2"), _ok("1")]})
    assert call(f"{server.url}/v1/models/digits/versions/1") == (
        200, {"model_version_status": [_ok("1")]})


def test_metadata_is_the_savedmodel_signature_def(server):
    status, body = call(f"{server.url}/v1/models/multi/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "multi", "signature_name": "", "version": "1"}
    sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["ids"]["dtype"] == "DT_INT32"
    dims = sig["inputs"]["image"]["tensor_shape"]["dim"]
    assert [d["size"] for d in dims] == ["-1", "8", "8", "1"]  # int64 as strings, as TF prints
    assert sorted(sig["outputs"]) == ["kind", "size"]
    _, old = call(f"{server.url}/v1/models/digits/versions/1/metadata")
    assert old["model_spec"]["version"] == "1"
    assert sorted(old["metadata"]["signature_def"]["signature_def"]["serving_default"]
                  ["outputs"]) == ["digit"]


def test_single_output_rows_and_columns_equal_the_signature(server, models_dir):
    x = digit_rows(5, seed=3)
    want = signature_outputs(models_dir / "digits" / "1", {"image": x})["digit"]
    url = f"{server.url}/v1/models/digits/versions/1:predict"
    for body, key in [({"instances": x.tolist()}, "predictions"),
                      ({"instances": [{"image": r} for r in x.tolist()]}, "predictions"),
                      ({"inputs": x.tolist()}, "outputs"),
                      ({"inputs": {"image": x.tolist()}, "signature_name": "serving_default"},
                       "outputs")]:
        status, answer = call(url, body)
        assert status == 200, answer
        assert list(answer) == [key]  # one output: the bare list, no name
        np.testing.assert_allclose(np.asarray(answer[key], np.float32), want, **CLOSE)


def test_latest_version_answers_with_one_object_per_row(server, models_dir):
    x = digit_rows(4, seed=4)
    want = signature_outputs(models_dir / "digits" / "2", {"image": x})
    status, answer = call(f"{server.url}/v1/models/digits:predict", {"instances": x.tolist()})
    assert status == 200, answer
    rows = answer["predictions"]
    assert len(rows) == 4 and sorted(rows[0]) == ["digit", "digit_class", "digit_probability"]
    assert [r["digit_class"] for r in rows] == want["digit_class"].tolist()
    np.testing.assert_allclose([r["digit"] for r in rows], want["digit"], **CLOSE)
    status, answer = call(f"{server.url}/v1/models/digits:predict", {"inputs": x.tolist()})
    assert sorted(answer["outputs"]) == ["digit", "digit_class", "digit_probability"]
    np.testing.assert_allclose(answer["outputs"]["digit_probability"],
                               want["digit_probability"], **CLOSE)


def test_two_inputs_in_both_formats(server, models_dir):
    x = multi_rows(3, seed=5)
    want = signature_outputs(models_dir / "multi" / "1", x)
    rows = [{"image": i, "ids": d} for i, d in zip(x["image"].tolist(), x["ids"].tolist())]
    status, answer = call(f"{server.url}/v1/models/multi:predict", {"instances": rows})
    assert status == 200, answer
    np.testing.assert_allclose([r["kind"] for r in answer["predictions"]], want["kind"], **CLOSE)
    np.testing.assert_allclose([r["size"] for r in answer["predictions"]], want["size"], **CLOSE)
    columns = {k: v.tolist() for k, v in x.items()}
    status, answer = call(f"{server.url}/v1/models/multi/versions/1:predict",
                          {"inputs": columns})
    assert status == 200, answer
    np.testing.assert_allclose(answer["outputs"]["size"], want["size"], **CLOSE)


GOOD_ROW = digit_rows(1, seed=6)[0].tolist()
BAD = [
    # (path after /v1/models/, body, status, part of the message)
    ("digits:predict", b'{"instances": [1,', 400, "JSON Parse error"),
    ("digits:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("digits:predict", b"[" * 200_000, 400, "JSON Parse error"),
    ("digits:predict", [1, 2], 400, "Is not object"),
    ("digits:predict", {"rows": [GOOD_ROW]}, 400, "Missing 'inputs' or 'instances' key"),
    ("digits:predict", {"instances": [GOOD_ROW], "inputs": [GOOD_ROW]}, 400, "only one of"),
    ("digits:predict", {"instances": []}, 400, "No values in 'instances'"),
    ("digits:predict", {"instances": [{"imag": GOOD_ROW}]}, 400, "unknown: ['imag']"),
    ("digits:predict", {"instances": [GOOD_ROW[:7]]}, 400,
     "input 'image' expects dtype float32 and shape [-1, 8, 8, 1]"),
    ("digits:predict", {"inputs": [[["a"] * 8] * 8]}, 400,
     "input 'image' expects dtype float32 and shape [-1, 8, 8, 1]; received strings"),
    ("digits:predict", {"instances": [GOOD_ROW, GOOD_ROW[:3]]}, 400, "unequal lengths"),
    ("digits:predict", {"signature_name": "classify", "instances": [GOOD_ROW]}, 400,
     'Serving signature name: "classify" not found'),
    ("digits:predict", {"signature_name": 3, "instances": [GOOD_ROW]}, 400,
     "'signature_name' key must be a string value"),
    ("multi:predict", {"inputs": {"image": [GOOD_ROW]}}, 400, "Missing named input: ids"),
    ("multi:predict", {"inputs": {"image": [GOOD_ROW], "ids": [[1.5, 2, 3]]}}, 400,
     "input 'ids' expects dtype int32 and shape [-1, 3]; received decimal numbers"),
    ("multi:predict", {"inputs": {"image": [GOOD_ROW], "ids": [[1, 2, 3e10]]}}, 400,
     "input 'ids' expects dtype int32"),
    ("multi:predict", {"instances": [GOOD_ROW]}, 400, "the signature has 2 inputs"),
    ("multi:predict", {"inputs": {"image": [GOOD_ROW], "ids": [[1, 2, 30]]}}, 400,
     "indices[0,2] = 30 is not in [0, 20)"),
    ("nope:predict", {"instances": [GOOD_ROW]}, 404, "Servable not found for request: "
     "Latest(nope)"),
    ("digits/versions/9:predict", {"instances": [GOOD_ROW]}, 404,
     "Servable not found for request: Specific(digits, 9)"),
    ("digits/labels/stable:predict", {"instances": [GOOD_ROW]}, 400,
     "Unrecognized servable version label: stable"),
    ("digits:classify", {"examples": []}, 501, "use :predict"),
]


@pytest.mark.parametrize("path, body, status, message", BAD,
                         ids=[f"{i}-{case[3][:30]}" for i, case in enumerate(BAD)])
def test_bad_requests_get_tf_serving_errors_and_the_server_keeps_answering(
        server, path, body, status, message):
    got_status, answer = call(f"{server.url}/v1/models/{path}", body)
    assert got_status == status, answer
    assert list(answer) == ["error"] and message in answer["error"], answer
    ok_status, ok = call(f"{server.url}/v1/models/digits:predict", {"instances": [GOOD_ROW]})
    assert ok_status == 200 and len(ok["predictions"]) == 1
    assert server.proc.poll() is None


@pytest.mark.parametrize("path, status, message", [
    ("/v1/models/nope", 404, "Could not find any versions of model nope"),
    ("/v1/models/digits/versions/7", 404, "Could not find version 7 of model digits"),
    ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models", 400, "Missing model name in request."),
    ("/v1/models/digits:predict", 400, "Malformed request: GET /v1/models/digits:predict"),
    ("/metrics", 404, "no such endpoint"),
])
def test_bad_urls(server, path, status, message):
    got_status, answer = call(server.url + path)
    assert got_status == status and message in answer["error"], answer


def test_nan_and_infinity_are_accepted_as_tf_serving_accepts_them(server, models_dir):
    x = digit_rows(2, seed=7)
    x[0, 0, 0, 0], x[1, 3, 3, 0] = np.nan, -np.inf
    body = json.dumps({"inputs": x.tolist()}).encode()
    assert b"NaN" in body and b"-Infinity" in body
    status, answer = call(f"{server.url}/v1/models/digits/versions/1:predict", body)
    assert status == 200, answer
    want = signature_outputs(models_dir / "digits" / "1", {"image": x})["digit"]
    np.testing.assert_allclose(np.asarray(answer["outputs"], np.float32), want, **CLOSE)


def test_a_body_over_the_limit_gets_413(server):
    big = b'{"instances": [' + b"0," * 600_000 + b"0]}"  # 1.2 MB > the fixture's 1 MB
    status, answer = call(f"{server.url}/v1/models/digits:predict", big)
    assert status == 413 and "larger than the limit of 1048576 bytes" in answer["error"]
    assert call(f"{server.url}/v1/models/digits")[0] == 200


def test_clients_that_hang_up_mid_request_cost_nothing(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"instances": [GOOD_ROW]}).encode()
    head = (f"POST /v1/models/digits:predict HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    for payload in (head + body[:10], head + body, b"\x00 not HTTP\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(payload)  # and hang up without reading the answer
    status, answer = call(f"{server.url}/v1/models/digits:predict", {"instances": [GOOD_ROW]})
    assert status == 200 and len(answer["predictions"]) == 1
    assert "Traceback" not in server.logs()


def test_a_chunked_body_over_the_limit_gets_413(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    chunk = b"0," * 100_000
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST /v1/models/digits:predict HTTP/1.1\r\nHost: {host}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        for _ in range(8):  # 1.6 MB, no Content-Length to refuse it by
            s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        answer = s.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 413") and b"larger than the limit" in answer
