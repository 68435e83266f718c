"""Exports to a full or read-only disk: one ``export failed:`` line, nothing published, earlier
versions byte-identical. The disks are small tmpfs mounts (the tests need root; skipped with
the reason otherwise) and are unmounted afterwards."""

from __future__ import annotations

import os
import subprocess

import pytest

from kspec import export
from kspec.cli import main
from kspec.exporter import ExportWriteError
from kspec.exporter.layout import TMP_PREFIX


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(size) -> folder``: a tmpfs of that size; ``readonly(folder)`` remounts it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = []

    def mount(size: str):
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(point)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", str(point)], capture_output=True)


def _readonly(point):
    done = subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")


def _fill(point, leave: int = 4096):
    """Fill the disk up to ``leave`` free bytes."""
    stat = os.statvfs(point)
    with open(point / "filler", "wb") as f:
        f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))


def _entries(model_dir):
    return sorted(p.name for p in model_dir.iterdir())


def test_weights_that_cannot_fit_are_refused_before_writing(tmpfs, tiny_model, tiny_sample,
                                                            snapshot):
    import keras

    disk = tmpfs("256k")
    first = export(tiny_model, disk, sample=tiny_sample).path
    before = snapshot(first.parent)
    inp = keras.Input((4,), name="x")
    big = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Dense(100_000)(inp)), name="tiny")
    with pytest.raises(ExportWriteError) as info:
        export(big, disk, sample=tiny_sample)
    message = str(info.value)
    assert message.startswith(f"cannot write {disk / 'tiny'}: not enough space (the export "
                              "needs at least 2.8 MB, the weights;"), message
    assert message.endswith("nothing was published and earlier versions are untouched")
    assert _entries(first.parent) == ["1"] and snapshot(first.parent) == before


def test_a_disk_that_fills_up_while_writing(tmpfs, tiny_model, tiny_sample, snapshot):
    disk = tmpfs("1m")
    first = export(tiny_model, disk, sample=tiny_sample).path
    before = snapshot(first.parent)
    _fill(disk)
    with pytest.raises(ExportWriteError) as info:
        export(tiny_model, disk, sample=tiny_sample)
    message = str(info.value)
    assert message.startswith(f"cannot write {disk / 'tiny'}: no space left on device ("), message
    assert "\n" not in message
    assert _entries(first.parent) == ["1"]  # no version 2, no temporary folder
    assert not any(p.name.startswith(TMP_PREFIX) for p in first.parent.iterdir())
    assert snapshot(first.parent) == before
    (disk / "filler").unlink()
    assert export(tiny_model, disk, sample=tiny_sample).version == 2  # space back: it works


def test_a_read_only_disk_gives_one_export_failed_line(tmpfs, trained_run, snapshot, capsys):
    disk = tmpfs("4m")
    first = export(trained_run, disk, name="digits", samples=8).path
    before = snapshot(first.parent)
    _readonly(disk)
    code = main(["export", str(trained_run.run_dir), "--out", str(disk), "--name", "digits",
                 "--samples", "8"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"export failed: cannot write {disk / 'digits'}: read-only file "
                          "system (OSError: [Errno 30] Read-only file system"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert snapshot(first.parent) == before
