"""The CLI's last line of defence: whatever escapes becomes one line naming the command and the
cause, the traceback goes to a log file the line names, and the exit status is 3."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A bug simulated inside a command: the CLI is run exactly as installed, in a new process.
BUGGY = textwrap.dedent("""
    import sys
    import kspec.cli.{module} as command
    import kspec.train.loop as loop

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug\\nsecond line of the message")

    command.run = boom if "{module}" == "validate" else command.run
    loop.train = boom
    from kspec.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _kspec(module: str, *args: str, tmp: Path, **env: str):
    environ = {k: v for k, v in os.environ.items() if k != "KSPEC_DEBUG"}
    environ.update(PYTHONPATH=str(ROOT), TMPDIR=str(tmp), TF_CPP_MIN_LOG_LEVEL="2", **env)
    return subprocess.run([sys.executable, "-c", BUGGY.format(module=module), *args],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)


def test_an_unexpected_error_is_one_line_and_a_log_file(tmp_path):
    done = _kspec("validate", "validate", "specs/quickstart.yaml", tmp=tmp_path)
    assert done.returncode == 3
    (log,) = tmp_path.glob("kspec-error-*.log")
    assert done.stderr == (f"kspec validate: unexpected error: RuntimeError: simulated bug (the "
                           f"traceback is in {log}; --debug or KSPEC_DEBUG=1 prints it)\n")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "second line of the message" in text
    assert "kspec validate failed at" in text


@pytest.mark.parametrize("how", ["--debug after", "--debug before", "KSPEC_DEBUG=1"])
def test_debug_prints_the_traceback_too(tmp_path, how):
    args = ["validate", "specs/quickstart.yaml"]
    env = {}
    if how == "--debug after":
        args.append("--debug")
    elif how == "--debug before":
        args.insert(0, "--debug")
    else:
        env["KSPEC_DEBUG"] = "1"
    done = _kspec("validate", *args, tmp=tmp_path, **env)
    assert done.returncode == 3
    assert done.stderr.startswith("Traceback (most recent call last)")
    assert "RuntimeError: simulated bug" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("kspec validate: unexpected error: "
                                                   "RuntimeError: simulated bug (the traceback "
                                                   "is in ")


def test_debug_leaves_expected_errors_alone(tmp_path, capsys):
    from kspec.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("kspec: 1\nname: x\nmodel: {layers: [{type: dense, units: -1}]}\n")
    assert main(["--debug", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: 2 problems in the spec:") and "Traceback" not in err


@pytest.mark.slow
def test_a_failed_run_keeps_the_traceback_in_its_directory(tmp_path):
    done = _kspec("fit", "fit", "specs/quickstart.yaml", "--out", str(tmp_path / "runs"),
                  "--quiet", tmp=tmp_path)
    assert done.returncode == 3
    (run_dir,) = (tmp_path / "runs").iterdir()
    log = run_dir / "error.log"
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"kspec fit: unexpected error: RuntimeError: simulated bug (the traceback "
                    f"is in {log}; --debug or KSPEC_DEBUG=1 prints it)"), done.stderr
    assert "Traceback" not in done.stderr and "simulated bug" in log.read_text()
    assert '"status": "failed"' in (run_dir / "meta.json").read_text()
    assert not list(tmp_path.glob("kspec-error-*.log"))
