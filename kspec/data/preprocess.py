"""Layers that run on each input before the model's own layers.

Statistics are fitted on the training split only and stored as layer weights, so saved
and exported models take raw inputs.
"""

from __future__ import annotations

from typing import Any

from kspec.data.sources import Data
from kspec.spec import Spec


def input_layers(spec: Spec, data: Data) -> dict[str, list[Any]]:
    """Per input name, the (fitted) preprocessing and augmentation layers, in order."""
    return {}
