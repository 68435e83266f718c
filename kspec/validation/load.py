"""The validation pipeline: schema, then search spaces, then the linter.

Every spec kspec reads goes through :func:`load_spec` (or :func:`validate` for a raw
mapping): the schema (:mod:`kspec.spec`), every value of every search space
(:mod:`kspec.validation.spaces`), and the guards that teach (:mod:`kspec.validation.lint`).
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import glob
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

from kspec.errors import SpecError, SpecErrors, SpecWarning
from kspec.spec.limits import check_tree
from kspec.spec.loader import apply_overrides, check_schema, read_raw
from kspec.spec.paths import file_paths, relative_to
from kspec.spec.root import Spec


def validate(raw: Mapping[str, Any], source: str = "<dict>") -> Spec:
    """Validate a raw mapping into a :class:`Spec`, or raise :class:`SpecErrors`.

    Search spaces are checked (every value each can take) and set to their defaults; the
    linter's advice is issued as :class:`SpecWarning` warnings.
    """
    from kspec.validation.lint import lint_spec
    from kspec.validation.spaces import resolve_spaces_for_load

    try:
        check_tree(raw)
    except SpecError as e:
        raise SpecErrors([e], source=source) from None
    raw = resolve_spaces_for_load(dict(raw), source)
    spec = check_schema(raw, source)
    for message in lint_spec(spec):
        warnings.warn(SpecWarning(message), stacklevel=3)
    return spec


def load_spec(source: Any, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> Spec:
    """Read and validate a spec; never imports TensorFlow.

    Args:
        source: a path to a YAML/JSON file, YAML/JSON text, a dict, or a Spec.
        overrides: ``{"training.epochs": 3}`` or ``["training.epochs=3"]``.

    Example:
        >>> spec = load_spec("specs/quickstart.yaml", ["training.epochs=1"])
        >>> spec.training.epochs
        1
    """
    if isinstance(source, Spec) and not overrides:
        return source  # already validated (and its warnings already shown)
    raw, label = read_raw(source)
    if overrides:
        apply_overrides(raw, overrides)
    # What is still relative (a dict's or a text's paths, --set values) is relative to the
    # current folder; made absolute, the resolved spec a run records reads the same files
    # from anywhere.
    relative_to(raw, Path.cwd())
    return validate(raw, label)


def missing_files(spec: Spec) -> list[str]:
    """Warnings for the files and folders a spec reads that do not exist (yet).

    ``kspec validate`` prints them; they are warnings because the data may be written
    later, or passed to ``kspec.fit(spec, data=...)`` instead. A loaded spec's paths are
    absolute already (:mod:`kspec.spec.paths`).

    Example:
        >>> spec = load_spec({"data": {"source": {"type": "npz", "path": "/no/such.npz"}},
        ...                   "model": {"layers": [{"type": "dense", "units": 1}]},
        ...                   "training": {"loss": "mse"}})
        >>> missing_files(spec)
        ['data.source.path: file not found: /no/such.npz']
    """
    out = []
    for where, value, kind in file_paths(spec):
        path = Path(value).expanduser()
        exists = path.is_file() if kind == "file" else path.is_dir() if kind == "folder" \
            else bool(glob.glob(str(path))) if kind == "files" else path.exists()
        if not exists:
            what = "model (file or folder)" if kind == "model" else kind
            out.append(f"{where}: no files match {value}" if kind == "files"
                       else f"{where}: {what} not found: {value}")
    return out
