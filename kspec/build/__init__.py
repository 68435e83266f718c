"""Spec -> Keras objects, one concept per module.

The provider modules (activations, initializers, ...) only register names at import time;
Keras is imported inside the factories, so importing them stays instant.
"""

from kspec.build.model import build_model

__all__ = ["build_model"]
