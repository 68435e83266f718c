"""kspec: declarative deep learning on Keras 3.

Write a model spec in YAML or JSON; kspec validates it (without importing TensorFlow),
compiles it into a Keras model, trains it, searches over it and exports it.

Example:
    >>> import kspec
    >>> spec = kspec.load_spec("specs/quickstart.yaml")
    >>> run = kspec.fit(spec, epochs=1)
    >>> run.test_metrics["accuracy"] > 0.5
    True
"""

from __future__ import annotations

from typing import Any

from kspec.errors import DataError, SpecError
from kspec.spec import Spec, json_schema, to_yaml
from kspec.validation import load_spec

__version__ = "0.1.0"

# Heavy entry points import TensorFlow; they load on first use so that `import kspec`
# and spec validation stay instant.
_LAZY = {
    "build": ("kspec.compiler.model", "build_model"),
    "fit": ("kspec.train.fit", "fit"),
    "Run": ("kspec.train.fit", "Run"),
    "load_run": ("kspec.train.fit", "load_run"),
    "tune": ("kspec.search.run", "tune"),
    "register": ("kspec.components.register", "register"),
    "predict_tta": ("kspec.train.tta", "predict_tta"),
    "combine_ensemble": ("kspec.train.ensemble", "combine"),
    "export": ("kspec.exporter.api", "export"),
    "load_model": ("kspec.compiler.loading", "load_model"),
    "custom_objects": ("kspec.compiler.loading", "custom_objects"),
    "ModelFileError": ("kspec.compiler.loading", "ModelFileError"),
}

__all__ = ["DataError", "Spec", "SpecError", "json_schema", "load_spec", "to_yaml",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kspec' has no attribute {name!r}")
