"""Writing files so that a kill or a full disk never leaves half of one, and a full or
read-only disk as one clear error.

Every writer of a run directory (:mod:`kspec.rundir`), of a search project and of the resume
state uses these: write a temporary file in the same folder, fsync it, rename it into place
(and fsync the folder). Readers then see the old version or the new one, never a mix.

Example:
    >>> atomic_write_text(Path("/tmp/kspec-example.txt"), "hello")  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from kspec.errors import DataError


class RunWriteError(DataError):
    """A run's file could not be written: the disk is full or read-only (or a quota).

    The message names the run, the file and the cause in one line; ``kspec fit`` marks the
    run failed and keeps its last good backup, so ``kspec fit --resume`` continues once
    there is space.
    """


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file via a temporary file in its folder, fsync and rename, so a kill or a
    full disk never leaves half a file: readers see the old version or the new one.

    Args:
        path: the file to (re)write.
        write: writes the content into the open binary file it is given.

    Raises:
        RunWriteError: the disk is full or read-only (the old version is kept).

    Example:
        >>> atomic_write(Path("/tmp/x.bin"), lambda f: f.write(b"data"))  # doctest: +SKIP
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise disk_error(e, path) or e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and disk_error(e, path) is not None:
            raise disk_error(e, path) from e
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write text via a temporary file, fsync and rename (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the disk is read-only",
                errno.EDQUOT: "the disk quota is exceeded"}


def disk_error(error: BaseException, path: Path | str) -> RunWriteError | None:
    """A :class:`RunWriteError` for a full or read-only disk (else None).

    Some writers (h5py, zip) report it only in their message, so that is read too.
    """
    if isinstance(error, RunWriteError):
        return error
    code = getattr(error, "errno", None)
    if code not in _DISK_ERRNOS:
        text = str(error)
        code = next((c for c in _DISK_ERRNOS if os.strerror(c) in text
                     or f"errno = {c}," in text), None)
    if code is None:
        return None
    return RunWriteError(f"cannot write {path}: {_DISK_ERRNOS[code]} ({os.strerror(code)})")


def ensure_free(folder: Path, nbytes: int, what: Path | str) -> None:
    """Raise :class:`RunWriteError` before writing about ``nbytes`` into ``folder`` when
    the disk has less free space than that (cheap: one statvfs).

    Writers such as h5py can crash the process on a full disk instead of raising, so
    large files are checked first.
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < nbytes:
        raise RunWriteError(f"cannot write {what}: the disk is full (about "
                            f"{_size(nbytes)} needed, {_size(free)} free)")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def model_bytes(model: Any) -> int:
    """About how many bytes a model's variables take (its weights and optimizer state)."""
    return sum(_bytes(v) for v in _all_variables(model))


def model_file_bytes(model: Any) -> int:
    """A generous estimate of a ``.keras`` file's size: the variables, plus the archive's
    config and HDF5 headers (measured: 28-38 KiB more than the variables for models of
    15-21 variables)."""
    return int(model_bytes(model) * 1.1) + 64 * 1024 + 4 * 1024 * len(_all_variables(model))


def variables(model: Any) -> tuple[list[Any], list[Any]]:
    """The model's variables (with seed states) and its optimizer's, in a stable order."""
    optimizer = getattr(model, "optimizer", None)
    return list(getattr(model, "variables", [])), list(getattr(optimizer, "variables", None)
                                                         or [])


def _all_variables(model: Any) -> list[Any]:
    model_vars, opt_vars = variables(model)
    return model_vars + opt_vars


def _bytes(v: Any) -> int:
    try:
        return int(math.prod(v.shape)) * _itemsize(v.dtype)
    except (TypeError, ValueError):
        return 0


def _itemsize(dtype: Any) -> int:
    import numpy as np

    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:
        return 4  # bfloat16 and other names NumPy does not know: at most 4 bytes


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=jsonable) + "\n")


def jsonable(value: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays (else ``str``)."""
    if hasattr(value, "tolist"):  # NumPy scalars and arrays alike (``item`` fails on arrays)
        return value.tolist()
    return str(value)


def save_model_atomic(model: Any, path: Path) -> None:
    """``model.save`` into a temporary name in the same folder, fsync, rename into place.

    The free space is checked first (h5py can crash the process on a full disk); a kill
    leaves at most the temporary ``.NAME.tmpPID.keras``, which :meth:`RunDir.clean_temporary`
    removes.

    Raises:
        RunWriteError: the disk is full or read-only (an existing file is kept).
    """
    path = Path(path)
    ensure_free(path.parent, model_file_bytes(model), path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        model.save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except Exception as e:  # h5py and zipfile report a full disk in their own types
        err = disk_error(e, path)
        if err is None:
            raise
        raise err from e
    finally:
        tmp.unlink(missing_ok=True)
