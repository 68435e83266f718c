"""Every `curl` example of docs/serving.md, run against a live server set up as the doc says."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess

import pytest

from tests.serve.helpers import ROOT, Server, call, digit_rows, digits_model, export

DOC = ROOT / "docs" / "serving.md"


def examples(text: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` of each ``$ curl`` line in the console blocks (a
    command continues while a quote is open or a line ends with a backslash)."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        lines, i = block.splitlines(), 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            while command.count("'") % 2 or command.endswith("\\"):
                i += 1
                command += "\n" + lines[i]
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            if command.startswith("curl "):
                found.append((command, "\n".join(output).strip()))
    return found


def structure(value):
    """The shape of a JSON value with the numbers left out (the doc's model was trained,
    the test's is not)."""
    if isinstance(value, dict):
        return {k: structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [len(value), *(structure(value[0]) if value else [])]
    return type(value).__name__ if not isinstance(value, (int, float)) else "number"


def run_curl(command: str, port: int):
    command = command.replace("localhost:8501", f"127.0.0.1:{port}")
    if shutil.which("curl"):
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    args = [a for a in shlex.split(command.replace("\\\n", " "))[1:] if a != "-s"]
    body = args[args.index("-d") + 1].encode() if "-d" in args else None
    return call("http://" + args[-1], body)[1]  # no curl here: the same request, stdlib


@pytest.fixture(scope="module")
def doc_server(tmp_path_factory):
    """`kspec serve models` over `digits` version 1 exported with class outputs."""
    models = tmp_path_factory.mktemp("doc") / "models"
    export(digits_model(), models, digit_rows(16), class_outputs=True)
    srv = Server(models, log=tmp_path_factory.mktemp("logs") / "serve.log")
    yield srv
    srv.stop()


def test_every_curl_example_answers_as_shown(doc_server):
    text = DOC.read_text()
    cases = examples(text)
    assert len(cases) >= 7
    port = int(doc_server.url.rsplit(":", 1)[1])
    for command, expected in cases:
        answer = run_curl(command, port)
        if not expected:
            assert "error" not in answer, (command, answer)
            continue
        want = json.loads(expected)
        if "error" in want or "model_version_status" in want:
            assert answer == want, command
        else:
            assert structure(answer) == structure(want), command
    assert doc_server.proc.poll() is None


def test_the_banner_is_as_shown(doc_server):
    shown = re.search(r"\$ kspec serve models\n(kspec serve: .*)\n", DOC.read_text()).group(1)
    port = doc_server.url.rsplit(":", 1)[1]
    got = re.sub(r"serve: \S+ on", "serve: models on", doc_server.banner.strip())
    assert got == shown.replace("8501", port)
