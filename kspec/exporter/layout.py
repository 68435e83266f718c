"""TF Serving's directory layout, ``MODELS_DIR/NAME/VERSION/``, written atomically.

An export is built in a hidden temporary directory next to its final place
(``MODELS_DIR/NAME/.tmp-kspec-PID-XXXX``) and renamed to ``MODELS_DIR/NAME/VERSION`` only
after it has been checked. TF Serving only picks up directories whose name is an integer,
so it never sees a half-written version, and earlier versions are never opened for writing.

A full, read-only or forbidden target is an :class:`ExportWriteError` with one line (checked
up front where it is cheap: the free space against the model's weight bytes), never a raw
``OSError`` or TensorFlow traceback.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from kspec.errors import first_line
from kspec.exporter.errors import ExportError, ExportWriteError

TMP_PREFIX = ".tmp-kspec-"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

# The file a client loads from a version folder, per export format (a SavedModel is the
# folder itself).
MODEL_FILES = {"tflite": "model.tflite", "keras": "model.keras"}


def check_name(name: str) -> str:
    """A model name usable as one directory (TF Serving's ``model_name``)."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ExportError(
            f"invalid model name {name!r}: use letters, digits, '_', '.' and '-' "
            "(it becomes the directory MODELS_DIR/NAME)"
        )
    return name


def versions(model_dir: str | os.PathLike) -> list[int]:
    """The published versions in ``MODELS_DIR/NAME``, ascending (integer directory names)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | os.PathLike) -> int:
    """One more than the highest published version, 1 for a new model."""
    found = versions(model_dir)
    return found[-1] + 1 if found else 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temps(model_dir: Path) -> list[Path]:
    """Delete temporary directories left by exports whose process has died (a hard crash).

    Directories of live processes are left alone: another export may be writing them.
    """
    removed = []
    if not model_dir.is_dir():
        return removed
    for p in model_dir.iterdir():
        if not (p.is_dir() and p.name.startswith(TMP_PREFIX)):
            continue
        pid_text = p.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def make_temp(model_dir: Path) -> Path:
    """A fresh temporary directory in ``model_dir`` (same file system, so rename is atomic).

    Raises:
        ExportWriteError: the folder cannot be created (read-only, full, forbidden).
    """
    tmp = model_dir / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as e:
        failure = write_failure(e, model_dir)
        if failure is None:
            raise
        raise failure from e
    return tmp


def publish(tmp: Path, model_dir: Path, version: int | None) -> tuple[Path, int]:
    """Rename a checked export into ``model_dir/VERSION``.

    Args:
        tmp: the finished temporary directory.
        model_dir: ``MODELS_DIR/NAME``.
        version: the version asked for; None takes the next free one (and retries if a
            concurrent export took it first).

    Returns:
        The final directory and its version.
    """
    for _ in range(100):
        v = next_version(model_dir) if version is None else version
        target = model_dir / str(v)
        if target.exists():
            if version is not None:
                raise ExportError(f"version {v} of {model_dir.name!r} already exists at "
                                  f"{target}; earlier versions are never overwritten")
            continue
        try:
            # os.rename onto an existing *empty* directory succeeds on POSIX; the exists()
            # test above plus the retry keeps two exporters from sharing a version.
            os.rename(tmp, target)
        except OSError:
            if version is not None or not target.exists():
                raise
            continue
        return target, v
    raise ExportError(f"could not find a free version in {model_dir}")  # pragma: no cover


# Why a write fails, by errno and by the words TensorFlow and h5py wrap them in.
_WRITE_FAILURES = (
    (errno.ENOSPC, "No space left on device", "no space left on device"),
    (errno.EDQUOT, "Disk quota exceeded", "disk quota exceeded"),
    (errno.EROFS, "Read-only file system", "read-only file system"),
    (errno.EACCES, "Permission denied", "permission denied"),
    (errno.EPERM, "Operation not permitted", "operation not permitted"),
)


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def write_failure(error: BaseException, model_dir: Path) -> ExportWriteError | None:
    """An :class:`ExportWriteError` when ``error`` (or what it wraps: TensorFlow's
    ``ResourceExhaustedError``, ``PermissionDeniedError``, h5py's ``OSError``) is a full,
    read-only or forbidden disk; else None."""
    for e in _chain(error):
        code = getattr(e, "errno", None)
        text = str(e)
        for number, words, reason in _WRITE_FAILURES:
            if code == number or words in text:
                return ExportWriteError(
                    f"cannot write {model_dir}: {reason} ({type(e).__name__}: "
                    f"{first_line(e, 160)}); nothing was published and earlier versions are "
                    "untouched")
    return None


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def weight_bytes(model: Any) -> int:
    """Bytes of the model's weights: the least any export of it writes."""
    import numpy as np

    total = 0
    for w in model.weights:
        try:
            size = np.dtype(str(w.dtype)).itemsize
        except TypeError:
            size = 4
        total += int(np.prod(w.shape)) * size
    return total


def check_free_space(model_dir: Path, needed: int) -> None:
    """Refuse before writing when the target cannot hold ``needed`` bytes (a lower bound:
    the weights), so a full disk fails in a second, not after the export's check."""
    try:
        free = shutil.disk_usage(_existing(model_dir)).free
    except OSError:  # cannot tell: the write itself will say
        return
    if free < needed:
        raise ExportWriteError(
            f"cannot write {model_dir}: not enough space (the export needs at least "
            f"{_megabytes(needed)}, the weights; {_megabytes(free)} free); nothing was "
            "published and earlier versions are untouched")


def _megabytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
