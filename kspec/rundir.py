"""Run directories: the record of one training run, and the only code that knows its files.

Layout::

    RUN/
      spec.yaml        the resolved spec (defaults filled in): `kspec fit RUN/spec.yaml` repeats it
      meta.json        seed, library versions, start/end times, status
      history.csv      per-epoch metrics (written while training; history_member{k}.csv for
                       ensemble members)
      history.png      the curves
      metrics.json     final train/validation/test metrics
      members.json     ensembles: each member's seed and metrics
      model.keras      the trained model (written atomically)
      checkpoint.keras the best model so far (training.callbacks.checkpoint)
      tensorboard/     TensorBoard logs (training.callbacks.tensorboard)
      diagnostics.csv  per-layer statistics over training, and diagnostics.png
                       (training.diagnostics)
      backup/          BackupAndRestore state while training (removed when a run finishes)
      error.log        the traceback of an unexpected failure (written by the CLI)

Everything that reads or writes a run (fit, resume, transfer bases, export, predict, the
reports) goes through :class:`RunDir`. A base module: it imports only the spec layer.

Example:
    >>> run = RunDir("runs/quickstart-20261124-110738")
    >>> run.model_file.name
    'model.keras'
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Any

from kspec.spec import Spec, to_yaml

STAMP = r"-\d{8}-\d{6}(-\d+)?"  # NAME-YYYYmmdd-HHMMSS[-N]


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

    def backup_dir(self, tag: str = "", phase: int = 0) -> Path:
        """BackupAndRestore state of one model (``tag``) in one training phase."""
        return self.backup_root / f"{tag or 'model'}_phase{phase}"

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

    def save_model(self, model: Any) -> None:
        save_model_atomic(model, self.model_file)

    def remove_backups(self) -> None:
        import shutil

        shutil.rmtree(self.backup_root, ignore_errors=True)


def _read_json(path: Path, default: Any, strict: bool = False) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        if not strict:
            return default
        from kspec.errors import DataError, first_line

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


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file, fsync and rename, so a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=jsonable) + "\n")


def jsonable(value: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays (else ``str``)."""
    if hasattr(value, "tolist"):  # NumPy scalars and arrays alike (``item`` fails on arrays)
        return value.tolist()
    return str(value)


def save_model_atomic(model: Any, path: Path) -> None:
    """``model.save`` into a temporary name in the same folder, then rename into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")
