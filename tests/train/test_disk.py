"""A full or read-only disk during ``kspec fit``: one clear line, the run marked failed, the
last good backup kept, earlier runs byte-identical, and ``--resume`` finishing once there is
space again (issue #12 item 5).

The disks are small tmpfs mounts, which needs root; elsewhere the tests are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from kspec.cli import main
from kspec.rundir import RunWriteError, atomic_write, atomic_write_text

pytestmark = pytest.mark.slow

SPEC = """
kspec: 1
name: disk
seed: 5
data:
  source: {type: bundled, name: digits}
  splits: {validation: 0.15, test: 0.15}
model:
  inputs: [{name: image, shape: [8, 8, 1]}]
  layers:
    - {type: flatten}
    - {type: dense, units: 48, activation: relu}
    - {type: dense, units: 10, activation: softmax}
training:
  optimizer: {type: adam, learning_rate: 0.003}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  batch_size: 128
  epochs: 4
  verbose: 0
"""


def _mount(path: Path, size: str, *options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]),
                    "tmpfs", str(path)], check=True, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        _mount(mnt, "1m")
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot mount a tmpfs here: {e.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


@pytest.fixture
def disk(tmpfs, tmp_path):
    """The tmpfs holding one finished run."""
    spec = tmp_path / "disk.yaml"
    spec.write_text(SPEC)
    assert main(["fit", str(spec), "--out", str(tmpfs / "runs"), "--quiet"]) == 0
    return tmpfs, spec


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(mnt: Path, free_kib: int) -> Path:
    """Leave about ``free_kib`` KiB free."""
    filler = mnt / "filler"
    free = shutil.disk_usage(mnt).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - free_kib * 1024))
    return filler


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_a_write_that_fills_the_disk_keeps_the_old_file(tmpfs):
    """The writes behind every run file: ENOSPC while writing becomes one line, and the
    previous version of the file stays whole (the free-space check is not involved)."""
    path = tmpfs / "history.csv"
    atomic_write_text(path, "epoch,loss\n0,1.0\n")
    with pytest.raises(RunWriteError) as info:
        atomic_write(path, lambda f: f.write(b"x" * (2 * 1024 * 1024)))
    assert str(info.value) == (f"cannot write {path}: the disk is full (No space left on "
                               "device)")
    assert path.read_text() == "epoch,loss\n0,1.0\n"
    assert [p.name for p in tmpfs.iterdir()] == ["history.csv"]  # no temporary file left


# Free space that stops the run at its first backup, its second, and its final model.
@pytest.mark.parametrize("free_kib", [16, 160, 240])
def test_a_full_disk_stops_fit_with_one_line_and_resume_finishes_later(disk, capsys,
                                                                       free_kib):
    mnt, spec = disk
    (earlier,) = (mnt / "runs").iterdir()
    before = _hashes(earlier)
    filler = _fill(mnt, free_kib)
    capsys.readouterr()
    assert main(["fit", str(spec), "--out", str(mnt / "runs"), "--quiet"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "the disk is full" in line, line
    assert _hashes(earlier) == before
    runs = [p for p in (mnt / "runs").iterdir() if p != earlier]
    if not runs:  # not even spec.yaml fitted: nothing was left behind
        assert "cannot start" in line
        return
    (run,) = runs
    assert f"run {run} stopped" in line and f"kspec fit --resume {run}" in line
    meta = json.loads((run / "meta.json").read_text())
    if "meta.json could not be marked failed" not in line:
        assert meta["status"] == "failed" and "disk is full" in meta["error"]
    filler.unlink()  # space again: the run continues from what it kept
    assert main(["fit", "--resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "meta.json").read_text())["status"] == "finished"
    assert keras.saving.load_model(run / "model.keras", compile=False) is not None
    assert _hashes(earlier) == before


def test_a_read_only_disk_is_one_line_before_and_during_training(disk, capsys):
    mnt, spec = disk
    (earlier,) = (mnt / "runs").iterdir()
    before = _hashes(earlier)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    capsys.readouterr()
    assert main(["fit", str(spec), "--out", str(mnt / "runs"), "--quiet"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "cannot start a run of disk" in line and "read-only" in line
    subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)

    class ReadOnlyAfterEpoch1(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)

    import kspec

    with pytest.raises(kspec.DataError) as info:
        kspec.fit(spec, out=mnt / "runs", callbacks=[ReadOnlyAfterEpoch1()])
    message = str(info.value)
    assert "the disk is read-only" in message
    assert "meta.json could not be marked failed either" in message
    assert "its last backup (after epoch 1) is kept" in message
    subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
    (run,) = [p for p in (mnt / "runs").iterdir() if p != earlier]
    assert main(["fit", "--resume", str(run), "--quiet"]) == 0
    assert _hashes(earlier) == before


def test_the_kspec_command_never_crashes_on_a_nearly_full_disk(disk):
    """h5py used to crash the process (SIGSEGV) when the disk filled under it; in a fresh
    process, as a user runs it, the answer is one line and exit status 2."""
    mnt, spec = disk
    _fill(mnt, 48)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-m", "kspec.cli", "fit", str(spec), "--out",
                           str(mnt / "runs"), "--quiet"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    _error_line(done.stderr)
