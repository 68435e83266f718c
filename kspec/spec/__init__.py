"""The spec schema: plain data, no Keras or TensorFlow import.

This package imports no other kspec package but :mod:`kspec.errors` and
:mod:`kspec.registry`. Reading a spec with every check (search spaces, lint) is
:func:`kspec.validation.load_spec` (``kspec.load_spec``).
"""

from kspec.spec.loader import (
    apply_overrides,
    check_schema,
    json_schema,
    parse_key_path,
    read_raw,
    to_yaml,
)
from kspec.spec.root import FORMAT_VERSION, Spec

__all__ = [
    "FORMAT_VERSION",
    "Spec",
    "apply_overrides",
    "check_schema",
    "json_schema",
    "parse_key_path",
    "read_raw",
    "to_yaml",
]
