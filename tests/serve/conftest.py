"""Small exports and a live ``kspec serve`` process on a free 127.0.0.1 port."""

from __future__ import annotations

import pytest

from tests.serve.helpers import Server, digit_rows, digits_model, export, multi_model, multi_rows


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """MODELS_DIR with `digits` (version 1: one output `digit`; version 2: with class
    outputs `digit_class`, `digit_probability`) and `multi` (two inputs, two outputs)."""
    out = tmp_path_factory.mktemp("models")
    model = digits_model()
    export(model, out, digit_rows(16))
    export(model, out, digit_rows(16), class_outputs=True)
    export(multi_model(), out, multi_rows(16))
    return out


@pytest.fixture(scope="session")
def server(models_dir, tmp_path_factory):
    """One server over `models_dir` (both digits versions loaded), shared by the tests
    that only read."""
    srv = Server(models_dir, "--poll-seconds", "0", "--keep-versions", "2", "--max-request-mb", "1",
                 log=tmp_path_factory.mktemp("logs") / "serve.log")
    yield srv
    srv.stop()
