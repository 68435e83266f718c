"""Metadata files stored with every export, readable without Keras or TensorFlow.

They live in ``VERSION/assets.extra/``, the folder TF Serving reserves for files that travel
with a SavedModel without being part of its graph::

    NAME/VERSION/assets.extra/
      kspec.json    format, signature, library versions, metrics, parity check, folding
      spec.yaml     the resolved spec the model was trained from (when known)
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from kspec.rundir import jsonable

ASSETS_DIR = "assets.extra"
METADATA_FILE = "kspec.json"
SPEC_FILE = "spec.yaml"


def write_metadata(export_dir: str | Path, metadata: dict[str, Any],
                   spec_yaml: str | None = None) -> Path:
    """Write ``kspec.json`` (and ``spec.yaml``) into ``export_dir/assets.extra``."""
    folder = Path(export_dir) / ASSETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    data = {"created": _dt.datetime.now().isoformat(timespec="seconds"), **metadata}
    path = folder / METADATA_FILE
    path.write_text(json.dumps(data, indent=2, default=jsonable) + "\n", encoding="utf-8")
    if spec_yaml is not None:
        (folder / SPEC_FILE).write_text(spec_yaml, encoding="utf-8")
    return path


def read_metadata(export_dir: str | Path) -> dict[str, Any]:
    """The metadata of an export (``{}`` when it has none), as plain JSON data.

    Example:
        >>> read_metadata("models/digits/1")["signature"]["inputs"]
        {'image': {'dtype': 'float32', 'shape': [None, 8, 8, 1]}}
    """
    path = Path(export_dir) / ASSETS_DIR / METADATA_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def read_spec_yaml(export_dir: str | Path) -> str | None:
    """The resolved spec stored with an export, as YAML text, or None."""
    path = Path(export_dir) / ASSETS_DIR / SPEC_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else None
