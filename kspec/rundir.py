"""Run directories: the record of one training run, and the only code that knows its files.

Layout::

    RUN/
      spec.yaml        the resolved spec (defaults filled in): `kspec fit RUN/spec.yaml` repeats it
      meta.json        seed, library versions, start/end times, status
      history.csv      per-epoch metrics, rewritten after every epoch from the backup state;
                       for an ensemble the members' mean (each member's is
                       history_member{k}.csv)
      history.png      the curves
      metrics.json     final train/validation/test metrics
      members.json     ensembles: each member's seed and metrics
      model.keras      the trained model
      model_phase{i}_{name}.keras   the model at the end of each phase (phased runs)
      checkpoint.keras the best model so far (training.callbacks.checkpoint)
      tensorboard/     TensorBoard logs (training.callbacks.tensorboard)
      diagnostics.csv  per-layer statistics over training, and diagnostics.png
                       (training.diagnostics)
      backup/{model|member{k}}/epoch-NNNNNN.npz   resume state after each epoch
                       (kspec.train.backup; removed when the run finishes)
      error.log        the traceback of an unexpected failure (written by the CLI)

Every file that is rewritten while a run trains is written atomically (a temporary file in
the same folder, fsync, rename): a kill or a full disk leaves the previous version whole.
The temporary files a kill leaves behind (``.NAME.*.tmp``, ``.model.tmpPID.keras``) are
removed when the run is resumed (:meth:`RunDir.clean_temporary`).

Everything that reads or writes a run (fit, resume, transfer bases, export, predict, the
reports) goes through :class:`RunDir`. A base module: it imports only the errors and spec layers.

Example:
    >>> run = RunDir("runs/quickstart-20261124-110738")
    >>> run.model_file.name
    'model.keras'
"""

from __future__ import annotations

import csv
import datetime as _dt
import errno
import io
import json
import math
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from kspec.errors import DataError
from kspec.spec import Spec, to_yaml

STAMP = r"-\d{8}-\d{6}(-\d+)?"  # NAME-YYYYmmdd-HHMMSS[-N]
# Names of the temporary files the atomic writers below make (".meta.json.x1y2.tmp",
# ".model.tmp123.keras"): what a kill can leave behind.
_TEMPORARY = re.compile(r"^\..+\.tmp")


class RunWriteError(DataError):
    """A run's file could not be written: the disk is full or read-only (or a quota).

    The message names the run, the file and the cause in one line; ``kspec fit`` marks the
    run failed and keeps its last good backup, so ``kspec fit --resume`` continues once
    there is space.
    """


class RunDir:
    """One run directory: where each of its files is, and how each is read and written."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- creating -----------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, name: str) -> "RunDir":
        """A fresh directory ``ROOT/NAME-YYYYmmdd-HHMMSS[-N]`` (never reuses an existing one)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = root / f"{name}-{stamp}"
        candidate, n = base, 1
        while True:
            try:
                candidate.mkdir()
                return cls(candidate)
            except FileExistsError:
                n += 1
                candidate = Path(f"{base}-{n}")

    # -- where things are ---------------------------------------------------------------
    @property
    def spec_file(self) -> Path:
        return self.path / "spec.yaml"

    @property
    def meta_file(self) -> Path:
        return self.path / "meta.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def members_file(self) -> Path:
        return self.path / "members.json"

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.keras"

    @property
    def error_log(self) -> Path:
        """Where the CLI writes the traceback of an unexpected failure of this run."""
        return self.path / "error.log"

    @property
    def history_png(self) -> Path:
        return self.path / "history.png"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def backup_root(self) -> Path:
        return self.path / "backup"

    def history_csv(self, tag: str = "") -> Path:
        """The per-epoch CSV of the model (``tag``: an ensemble member, ``member0``)."""
        return self.path / (f"history_{tag}.csv" if tag else "history.csv")

    def history_csvs(self) -> list[Path]:
        """Every history CSV in the run (the model's and each member's)."""
        return sorted(self.path.glob("history*.csv"))

    def diagnostics_csv(self, tag: str = "") -> Path:
        """Per-layer statistics over training (``training.diagnostics``)."""
        return self.path / (f"diagnostics_{tag}.csv" if tag else "diagnostics.csv")

    def diagnostics_png(self, tag: str = "") -> Path:
        return self.path / (f"diagnostics_{tag}.png" if tag else "diagnostics.png")

    @property
    def diagnose_png(self) -> Path:
        """The per-layer figure ``kspec diagnose RUN`` draws of the trained model."""
        return self.path / "diagnose.png"

    def diagnostics_tensorboard_dir(self, tag: str = "") -> Path:
        return self.tensorboard_dir / (f"diagnostics_{tag}" if tag else "diagnostics")

    def backup_dir(self, tag: str = "") -> Path:
        """The resume state of one model (``tag``: an ensemble member), one file per epoch
        (:mod:`kspec.train.backup`)."""
        return self.backup_root / (tag or "model")

    def phase_model_file(self, index: int, name: str, tag: str = "") -> Path:
        """The model at the end of phase ``index`` (``name``) of a phased run."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return self.path / f"model_phase{index}_{safe}{'_' + tag if tag else ''}.keras"

    # -- what it is ---------------------------------------------------------------------
    @staticmethod
    def is_run(path: str | os.PathLike) -> bool:
        """True for a folder that holds a run's spec (finished or not)."""
        return (Path(path) / "spec.yaml").is_file()

    @staticmethod
    def matches(path: Path, spec_name: str) -> bool:
        """True when ``path`` is named like a run of the spec ``spec_name``."""
        return re.fullmatch(re.escape(spec_name) + STAMP, path.name) is not None

    def has_model(self) -> bool:
        return self.model_file.is_file()

    # -- reading ------------------------------------------------------------------------
    def read_meta(self, *, strict: bool = False) -> dict[str, Any]:
        """``meta.json`` as a dict ({} when missing; when damaged, {} or with ``strict`` a
        DataError naming the file)."""
        return _read_json(self.meta_file, {}, strict)

    def read_metrics(self, *, strict: bool = False) -> dict[str, Any]:
        """``metrics.json`` as a dict ({} when the run has not finished)."""
        return _read_json(self.metrics_file, {}, strict)

    def read_members(self) -> list[dict[str, Any]] | None:
        data = _read_json(self.members_file, default=None)
        return data if isinstance(data, list) else None

    def read_history(self, tag: str = "") -> list[dict[str, Any]]:
        """The rows of a history CSV (``epoch`` an int, other cells floats; [] when absent)."""
        path = self.history_csv(tag)
        if not path.is_file():
            return []
        rows = []
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.append({k: int(v) if k == "epoch" else _number(v) for k, v in row.items()})
        return rows

    def read_spec(self) -> Spec:
        """The run's resolved spec, validated (lint advice was shown when it trained)."""
        import warnings

        from kspec.validation import load_spec

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_spec(self.spec_file)

    def status(self) -> str | None:
        """``running``, ``finished``, ``failed`` or None (no record)."""
        return self.read_meta().get("status")

    # -- writing ------------------------------------------------------------------------
    def write_spec(self, spec: Spec) -> None:
        atomic_write_text(self.spec_file, to_yaml(spec))

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json(self.meta_file, meta)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.metrics_file, metrics)

    def write_members(self, members: list[dict[str, Any]]) -> None:
        write_json(self.members_file, members)

    def write_history(self, rows: list[dict[str, Any]], tag: str = "") -> None:
        """Rewrite a history CSV (atomically): ``epoch`` first, then every metric by name."""
        keys = sorted({k for row in rows for k in row if k != "epoch"})
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["epoch", *keys])
        for row in rows:
            w.writerow([row["epoch"], *(_cell(row.get(k)) for k in keys)])
        atomic_write_text(self.history_csv(tag), out.getvalue())

    def save_model(self, model: Any) -> None:
        save_model_atomic(model, self.model_file)

    def remove_backups(self) -> None:
        shutil.rmtree(self.backup_root, ignore_errors=True)

    def clean_temporary(self) -> list[Path]:
        """Remove the temporary files a killed process left (in the run and its backups);
        returns what was removed."""
        removed = []
        for folder in [self.path, *(p for p in self.backup_root.glob("*") if p.is_dir())]:
            for p in folder.glob(".*"):
                if _TEMPORARY.match(p.name) and p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _cell(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _read_json(path: Path, default: Any, strict: bool = False) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        if not strict:
            return default
        from kspec.errors import first_line

        raise DataError(f"{path}: cannot read the run's record ({type(e).__name__}: "
                        f"{first_line(e)})") from e


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("kspec", "tensorflow", "keras", "keras-tuner", "numpy", "pydantic",
                 "tensorflow-datasets"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


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


def _all_variables(model: Any) -> list[Any]:
    optimizer = getattr(model, "optimizer", None)
    return list(getattr(model, "variables", [])) + list(
        getattr(optimizer, "variables", None) or [])


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


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")
