"""Custom Keras classes of kspec (Maxout, fixed conv kernels, style/content losses, fairness
and per-class metrics, uncertainty weighting) and ``kspec.register`` for users' own.

The submodules that define Keras classes import Keras; this package itself does not.
:func:`import_all` imports them so that a ``.keras`` file saved with them loads with
``keras.saving.load_model(path, safe_mode=True)`` in a fresh process.
"""

from __future__ import annotations

import importlib

_KERAS_MODULES = (
    "kspec.components.activations",
    "kspec.components.initializers",
    "kspec.components.losses",
    "kspec.components.metrics",
    "kspec.components.multitask",
)


def import_all() -> None:
    """Register every kspec Keras class with Keras's serialization (imports Keras).

    Example:
        >>> import keras, kspec.components
        >>> kspec.components.import_all()
        >>> keras.saving.get_registered_object("kspec>Maxout").__name__
        'Maxout'
    """
    for name in _KERAS_MODULES:
        importlib.import_module(name)
