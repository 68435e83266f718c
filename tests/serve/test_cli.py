"""`kspec serve` from the command line: no Keras in the server, no server stack in kspec."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kspec.cli import main
from tests.serve.helpers import ROOT

# Runs `kspec serve` in a thread of a fresh interpreter, predicts once over HTTP, and reports
# which heavy packages the process imported.
SERVE_AND_REPORT = """
import json, sys, threading, urllib.request
import kspec.cli.serve as cli
from kspec.cli import main
ready, urls = threading.Event(), []
cli._ready = lambda url, manager: (urls.append(url), ready.set())
args = ["serve", sys.argv[1], "--port", "0", "--poll-seconds", "0", "--log-level", "error"]
threading.Thread(target=main, args=(args,), daemon=True).start()
assert ready.wait(120), "server did not start"
body = json.dumps({"instances": [[[[0.0]] * 8] * 8]}).encode()
with urllib.request.urlopen(urls[0] + "/v1/models/digits:predict", body, timeout=60) as r:
    answer = json.load(r)
print(json.dumps({"rows": len(answer["predictions"]),
                  "imported": sorted(m for m in ("keras", "tensorflow", "uvicorn")
                                     if m in sys.modules)}))
"""


def _python(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_server_answers_without_ever_importing_keras(models_dir):
    report = json.loads(_python(SERVE_AND_REPORT, str(models_dir)))
    assert report == {"rows": 1, "imported": ["tensorflow", "uvicorn"]}


def test_kspec_and_its_cli_do_not_import_the_server_stack():
    code = ("import sys, kspec, kspec.serve, kspec.cli; kspec.cli._parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'starlette', 'uvicorn') "
            "if m in sys.modules))")
    assert _python(code) == "[]"


def test_help_lists_serve_and_its_options(capsys):
    try:
        main(["serve", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for option in ("--port", "--max-batch-size", "--batch-timeout-ms", "--no-batching",
                   "--keep-versions", "--poll-seconds", "--max-request-mb"):
        assert option in out


def test_a_missing_models_dir_is_one_clear_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'nope'}: no such folder") and err.count("\n") == 1


def test_bad_options_are_refused(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--max-batch-size", "0"]) == 2
    assert "invalid serve option max_batch_size=0" in capsys.readouterr().err
