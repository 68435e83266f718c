"""Relative paths in a spec file are relative to the file's folder.

``kspec fit /elsewhere/spec.yaml`` reads ``path: data/x.npz`` as ``/elsewhere/data/x.npz``,
as config tools do. The paths are made absolute when the file is read, so the resolved spec
that a run records (``RUN/spec.yaml``) names the same files from any folder. A spec given as
a dict or as YAML text has no folder: its relative paths are relative to the current folder,
and so are ``--set`` overrides (typed where the command runs); ``kspec.load_spec`` makes
those absolute against the current folder once the overrides are applied.

Which values are paths: the fields each data source's schema declares in ``path_fields``
(``path``, one path or one per named split, of ``npz``, ``csv`` and ``image_folder``;
``data_dir`` of ``tfds``), and of every
transfer ``base`` (``model.base`` and ``model.blocks[i].base``) ``path``, ``weights`` and a
``run`` that is written as a path (with a ``/`` or ending in ``.keras``; a bare ``run: NAME``
is a spec name, looked up in the run folders). ``bundled:`` names, absolute paths and
``~/...`` are left as they are.

Example:
    >>> relative_to({"data": {"source": {"type": "npz", "path": "d/x.npz"}}}, "/specs")
    {'data': {'source': {'type': 'npz', 'path': '/specs/d/x.npz'}}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# `weights:` words that Keras reads as "download" (kspec refuses them at validation).
_NOT_FILES = ("imagenet", "download")


def _absolute(value: Any, folder: Path) -> Any:
    if not isinstance(value, str) or not value or value.startswith(("bundled:", "~")):
        return value
    if os.path.isabs(value):
        return value
    return os.path.normpath(folder / value)


def _path_fields(kind: Any) -> dict[str, str]:
    """The fields of a source type that hold paths, each ``file`` or ``folder`` (declared by
    its registered schema)."""
    import kspec.spec.sources  # noqa: F401 - registers the source schemas
    from kspec.registry import SOURCES

    if not isinstance(kind, str) or kind not in SOURCES:
        return {}
    return getattr(SOURCES.get(kind).config, "path_fields", {})


def _run_is_a_path(value: Any) -> bool:
    return isinstance(value, str) and ("/" in value or os.sep in value or
                                       value.endswith(".keras") or value.startswith("."))


def _base(base: Any, folder: Path) -> None:
    if not isinstance(base, dict):
        return
    for key in ("path", "weights"):
        value = base.get(key)
        if key == "weights" and isinstance(value, str) and value.lower() in _NOT_FILES:
            continue  # Keras's download keywords: refused with a clear message, not a path
        if key in base:
            base[key] = _absolute(value, folder)
    if _run_is_a_path(base.get("run")):
        base["run"] = _absolute(base["run"], folder)


def relative_to(raw: dict[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """Make the relative paths of a raw spec read from a file in ``folder`` absolute.

    Changes ``raw`` in place (and returns it); values of unexpected types are left for the
    schema to refuse.
    """
    folder = Path(folder)
    data = raw.get("data")
    source = data.get("source") if isinstance(data, dict) else None
    if isinstance(source, dict):
        for key in _path_fields(source.get("type")):
            if isinstance(source.get(key), dict):
                source[key] = {k: _absolute(v, folder) for k, v in source[key].items()}
            elif key in source:
                source[key] = _absolute(source[key], folder)
    model = raw.get("model")
    if isinstance(model, dict):
        _base(model.get("base"), folder)
        blocks = model.get("blocks")
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict):
                _base(block.get("base"), folder)
    return raw


def file_paths(spec: Any) -> list[tuple[str, str, str]]:
    """The files and folders a validated spec reads: ``(spec path, value, kind)``.

    ``kind`` is ``file``, ``folder`` or ``files`` (a glob pattern); ``bundled:`` names, run
    names and folders kspec writes (``output``, a cache) are left out.
    """
    out: list[tuple[str, str, str]] = []
    source = spec.data.source
    for key, what in _path_fields(getattr(source, "type", None)).items():
        if what == "output":
            continue
        value = getattr(source, key, None)
        paths = value if isinstance(value, dict) else {None: value}
        for split, one in paths.items():
            where = f"data.source.{key}" + (f".{split}" if split else "")
            if isinstance(one, str) and one and not one.startswith("bundled:"):
                out.append((where, one, what))
    bases = [("model.base", spec.model.base)]
    bases += [(f"model.blocks[{i}].base", b.base) for i, b in enumerate(spec.model.blocks)]
    for where, base in bases:
        if base is None:
            continue
        if base.path is not None:
            out.append((f"{where}.path", base.path, "model"))
        if base.run is not None and _run_is_a_path(base.run):
            out.append((f"{where}.run", base.run, "model"))
        if base.weights is not None:
            out.append((f"{where}.weights", base.weights, "file"))
    return out
