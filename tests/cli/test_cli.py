"""The kspec command: exit codes, messages without tracebacks, the main commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kspec.cli import main

ROOT = Path(__file__).resolve().parents[2]


def kspec_cmd(*args, cwd=ROOT):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "kspec.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_validate_ok_and_bad(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "specs/quickstart.yaml").read_text().replace("relu", "rleu"))
    assert main(["validate", str(ROOT / "specs/quickstart.yaml")]) == 0
    assert "ok (quickstart)" in capsys.readouterr().out
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "model.layers[1].activation: unknown activation 'rleu'; did you mean 'relu'?" in err
    assert "Traceback" not in err


def test_validate_is_instant_and_tensorflow_free(tmp_path):
    # The subprocess checks sys.modules after running the real CLI entry point.
    code = ("import sys; from kspec.cli import main; rc = main(['validate', "
            "'specs/quickstart.yaml', 'specs/convnet.yaml']); "
            "assert 'tensorflow' not in sys.modules; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_set_overrides_on_validate(capsys):
    rc = main(["validate", str(ROOT / "specs/quickstart.yaml"), "--set", "training.epochs=0"])
    assert rc == 2
    assert "training.epochs: should be greater than 0" in capsys.readouterr().err


def test_schema_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "kspec model spec" and "properties" in schema


def test_components_lists_registries(capsys):
    assert main(["components", "activations"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("activations (") and "relu" in out and "losses" not in out


def test_fit_summary_and_failure_exit_codes(tmp_path):
    out = kspec_cmd("fit", "specs/quickstart.yaml", "--out", str(tmp_path), "--quiet",
                    "--set", "training.epochs=2")
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout and "model.keras" in out.stdout
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "model.keras").is_file()
    bad = kspec_cmd("fit", "specs/quickstart.yaml", "--out", str(tmp_path),
                    "--set", "model.layers[1].units=-1")
    assert bad.returncode == 2
    assert "error: specs/quickstart.yaml: model.layers[1].units" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_summary_prints_the_keras_summary(capsys):
    assert main(["summary", str(ROOT / "specs/convnet.yaml")]) == 0
    out = capsys.readouterr().out
    assert "conv2d_0" in out and "Total params" in out


@pytest.mark.parametrize("argv", [["nope"], ["fit", "--bogus"]])
def test_usage_errors(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_fit_needs_a_spec_or_resume(capsys):
    assert main(["fit"]) == 2
    assert "give either a SPEC or --resume RUN_DIR" in capsys.readouterr().err


def test_validate_prints_lint_warnings_without_python_noise(tmp_path, capsys):
    spec = tmp_path / "warn.yaml"
    spec.write_text((ROOT / "specs/quickstart.yaml").read_text().replace(
        "kernel_initializer: he_normal", "kernel_initializer: zeros"))
    assert main(["validate", str(spec)]) == 0
    captured = capsys.readouterr()
    assert "ok (quickstart)" in captured.out
    assert f"{spec}: warning: model.layers[1].kernel_initializer" in captured.err
    assert "SpecWarning" not in captured.err and ".py:" not in captured.err
