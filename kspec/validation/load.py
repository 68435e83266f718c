"""The validation pipeline: schema, then search spaces, then the linter.

Every spec kspec reads goes through :func:`load_spec` (or :func:`validate` for a raw
mapping): the schema (:mod:`kspec.spec`), every value of every search space
(:mod:`kspec.validation.spaces`), and the guards that teach (:mod:`kspec.validation.lint`).
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping

from kspec.errors import SpecWarning
from kspec.spec.loader import apply_overrides, check_schema, read_raw
from kspec.spec.root import Spec


def validate(raw: Mapping[str, Any], source: str = "<dict>") -> Spec:
    """Validate a raw mapping into a :class:`Spec`, or raise :class:`SpecErrors`.

    Search spaces are checked (every value each can take) and set to their defaults; the
    linter's advice is issued as :class:`SpecWarning` warnings.
    """
    from kspec.validation.lint import lint_spec
    from kspec.validation.spaces import resolve_spaces_for_load

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
    return validate(raw, label)
