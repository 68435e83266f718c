"""Hyperparameter search: search spaces written in a spec, searched with KerasTuner.

``kspec.tune(spec)`` runs a search; :mod:`kspec.tune.check` validates spaces without
TensorFlow (the loader uses it), :mod:`kspec.tune.hyper` turns spaces into KerasTuner
hyperparameters, :mod:`kspec.tune.results` writes the trial table, plot and best spec, and
:mod:`kspec.tune.distributed` runs chief/worker searches.
"""

from __future__ import annotations

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
