"""TF Serving's directory layout, ``MODELS_DIR/NAME/VERSION/``, written atomically.

An export is built in a hidden temporary directory next to its final place
(``MODELS_DIR/NAME/.tmp-kspec-PID-XXXX``) and renamed to ``MODELS_DIR/NAME/VERSION`` only
after it has been checked. TF Serving only picks up directories whose name is an integer,
so it never sees a half-written version, and earlier versions are never opened for writing.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from kspec.exporter.errors import ExportError

TMP_PREFIX = ".tmp-kspec-"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


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
    """A fresh temporary directory in ``model_dir`` (same file system, so rename is atomic)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
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
