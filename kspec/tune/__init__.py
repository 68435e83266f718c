"""Hyperparameter search: search spaces written in a spec, searched with KerasTuner.

``kspec.tune(spec)`` runs a search; :mod:`kspec.tune.check` validates spaces without
TensorFlow (the loader uses it), :mod:`kspec.tune.hyper` turns spaces into KerasTuner
hyperparameters, :mod:`kspec.tune.results` writes the trial table, plot and best spec, and
:mod:`kspec.tune.distributed` runs chief/worker searches.
"""

from __future__ import annotations

import sys
import types
from typing import Any

# Importing this package must stay TensorFlow-free (the spec loader imports kspec.tune.check).
_LAZY = {"tune": ("kspec.tune.run", "tune"), "SearchResult": ("kspec.tune.run", "SearchResult"),
         "load_search": ("kspec.tune.check", "load_search"),
         "raw_spec": ("kspec.tune.check", "raw_spec")}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'kspec.tune' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    """``kspec.tune`` is both this package and the function: once the package is imported
    (the spec loader imports it), the name ``kspec.tune`` refers to the package, so calls
    are forwarded to :func:`kspec.tune.run.tune`."""

    def __call__(self, *args: Any, **kwargs: Any):
        from kspec.tune.run import tune

        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
