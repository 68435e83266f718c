"""The spec schema: plain data, no Keras or TensorFlow import."""

from kspec.spec.loader import (
    apply_overrides,
    json_schema,
    load_spec,
    parse_key_path,
    read_raw,
    to_yaml,
    validate,
)
from kspec.spec.root import FORMAT_VERSION, Spec

__all__ = [
    "FORMAT_VERSION",
    "Spec",
    "apply_overrides",
    "json_schema",
    "load_spec",
    "parse_key_path",
    "read_raw",
    "to_yaml",
    "validate",
]
