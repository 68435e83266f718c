"""Version switches under concurrent requests: none fails; a broken version never serves."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest

from tests.serve.helpers import Server, call, digit_rows, digits_model, export, signature_outputs

CLIENTS = 6
CLIENT_SECONDS = 120  # bounds the clients even if the switch never came


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A server polling its models dir every 0.1 s, with `digits` version 1."""
    out = tmp_path_factory.mktemp("models")
    export(digits_model(seed=1), out, digit_rows(16))
    srv = Server(out, "--poll-seconds", "0.1", "--batch-timeout-ms", "1",
                 log=tmp_path_factory.mktemp("logs") / "serve.log")
    yield out, srv
    srv.stop()


def _states(url: str) -> dict[str, str]:
    status, body = call(f"{url}/v1/models/digits")
    assert status == 200, body
    return {s["version"]: s["state"] for s in body["model_version_status"]}


def _wait_for(url: str, states: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _states(url) == states:
            return
        time.sleep(0.05)
    raise AssertionError(f"states {_states(url)}, expected {states}")


def test_a_new_version_is_switched_to_under_load_without_a_failed_request(live):
    out, server = live
    x = digit_rows(3, seed=8)
    want = {1: signature_outputs(out / "digits" / "1", {"image": x})["digit"]}
    new_model = digits_model(seed=9)
    results: list[tuple[float, int, object]] = []  # (sent at, status, answer)
    stop = threading.Event()

    deadline = time.monotonic() + CLIENT_SECONDS

    def client() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            sent = time.monotonic()
            results.append((sent, *call(f"{server.url}/v1/models/digits:predict",
                                        {"instances": x.tolist()})))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        exporting = time.monotonic()
        # kspec export writes a hidden temporary folder into models/digits, then renames it
        path = export(new_model, out, digit_rows(16))
        assert path == out / "digits" / "2"
        want[2] = signature_outputs(path, {"image": x})["digit"]
        _wait_for(server.url, {"2": "AVAILABLE", "1": "END"})
        switched = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    failures = [r for r in results if r[1] != 200]
    assert not failures, failures[:3]

    def version(answer) -> int:
        got = np.asarray(answer["predictions"], np.float32)
        found = [v for v, w in want.items() if np.allclose(got, w, rtol=1e-5, atol=1e-6)]
        assert len(found) == 1, got
        return found[0]

    before = {version(a) for sent, _, a in results if sent < exporting}
    during = {version(a) for sent, _, a in results if exporting <= sent < switched}
    after = {version(a) for sent, _, a in results if sent >= switched}
    assert before == {1} and after == {2}  # once version 1 is END, only version 2 answers
    assert during  # requests kept coming while the new version was exported and loaded
    assert not any(p.name.startswith(".") for p in (out / "digits").iterdir())


def test_a_version_that_fails_to_load_is_reported_and_the_previous_keeps_serving(live):
    out, server = live
    current = max(int(v) for v, s in _states(server.url).items() if s == "AVAILABLE")
    broken = out / "digits" / ".staging"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a protocol buffer")
    os.rename(broken, out / "digits" / str(current + 1))  # published atomically, as kspec does
    deadline = time.monotonic() + 60
    while _states(server.url).get(str(current + 1)) != "END" and time.monotonic() < deadline:
        time.sleep(0.05)
    status, body = call(f"{server.url}/v1/models/digits/versions/{current + 1}")
    entry = body["model_version_status"][0]
    assert entry["state"] == "END" and entry["status"]["error_code"] != "OK"
    assert "cannot load the SavedModel" in entry["status"]["error_message"]
    assert _states(server.url)[str(current)] == "AVAILABLE"
    status, answer = call(f"{server.url}/v1/models/digits:predict",
                          {"instances": digit_rows(1).tolist()})
    assert status == 200 and len(answer["predictions"]) == 1
    status, answer = call(f"{server.url}/v1/models/digits/versions/{current + 1}:predict",
                          {"instances": digit_rows(1).tolist()})
    assert status == 404 and f"Specific(digits, {current + 1})" in answer["error"]
    assert "failed to load" in server.logs() and "keeps serving" in server.logs()


def test_removing_the_newest_version_folder_goes_back_to_the_one_before(live):
    out, server = live
    assert _states(server.url)["2"] == "AVAILABLE"
    shutil.rmtree(out / "digits" / "2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            _states(server.url).get("1") == "AVAILABLE" and _states(server.url)["2"] == "END"):
        time.sleep(0.05)
    assert _states(server.url)["1"] == "AVAILABLE" and _states(server.url)["2"] == "END"
    x = digit_rows(2, seed=10)
    status, answer = call(f"{server.url}/v1/models/digits:predict", {"instances": x.tolist()})
    want = signature_outputs(out / "digits" / "1", {"image": x})["digit"]
    assert status == 200
    np.testing.assert_allclose(np.asarray(answer["predictions"], np.float32), want, rtol=1e-6)


def test_sigterm_stops_the_server_cleanly(live):
    _, server = live
    assert server.stop() == 0
    assert "kspec serve: stopped" in server.logs()
