"""Run directories: the record of one training run.

Layout::

    RUN/
      spec.yaml        the resolved spec (defaults filled in): `kspec fit RUN/spec.yaml` repeats it
      meta.json        seed, library versions, start/end times, status
      history.csv      per-epoch metrics (written while training)
      history.png      the curves
      metrics.json     final train/validation/test metrics
      model.keras      the trained model (written atomically)
      backup/          BackupAndRestore state while training (removed when a run finishes)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from kspec.spec import Spec, to_yaml


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


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """A fresh directory ``ROOT/NAME-YYYYmmdd-HHMMSS[-N]`` (never reuses an existing one)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{name}-{stamp}"
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = Path(f"{base}-{n}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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


def write_spec(run_dir: Path, spec: Spec) -> None:
    atomic_write_text(run_dir / "spec.yaml", to_yaml(spec))


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")
