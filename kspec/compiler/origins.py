"""Which spec path built each Keras layer, for errors found after the model is built.

A check that runs on the built model (a layer XLA cannot compile, say) reports the spec
path the layer came from; the builders record it here as they create layers. A weak
mapping: forgetting a model forgets its layers' entries.

Example:
    >>> import keras
    >>> layer = remember(keras.layers.Dense(2), "model.layers[1]")
    >>> origin(layer)
    'model.layers[1]'
"""

from __future__ import annotations

import weakref
from typing import Any

_ORIGINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember(layer: Any, path: str) -> Any:
    """Record that ``layer`` was built for ``path``; returns the layer."""
    try:
        _ORIGINS[layer] = path
    except TypeError:  # not weakly referable: nothing to remember
        pass
    return layer


def origin(layer: Any) -> str | None:
    """The spec path ``layer`` was built for, or None."""
    try:
        return _ORIGINS.get(layer)
    except TypeError:
        return None
