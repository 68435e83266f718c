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
reports) goes through :class:`RunDir`; files are written atomically (:mod:`kspec.atomic`).
A base module: it imports only the errors, atomic and spec layers.

Example:
    >>> run = RunDir("runs/quickstart-20261124-110738")
    >>> run.model_file.name
    'model.keras'
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

# The writers live in kspec.atomic; they are named here too, where run files are written.
from kspec.atomic import (  # noqa: F401
    RunWriteError,
    atomic_write,
    atomic_write_text,
    disk_error,
    jsonable,
    save_model_atomic,
    write_json,
)
from kspec.errors import DataError
from kspec.spec import Spec, to_yaml

STAMP = r"-\d{8}-\d{6}(-\d+)?"  # NAME-YYYYmmdd-HHMMSS[-N]
# Names of the temporary files the atomic writers below make (".meta.json.x1y2.tmp",
# ".model.tmp123.keras"): what a kill can leave behind.
_TEMPORARY = re.compile(r"^\..+\.tmp")


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


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")
