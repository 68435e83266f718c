"""Spec -> Keras objects, one concept per module.

The provider modules (activations, initializers, ...) only register names at import time;
Keras is imported inside the factories, so importing them stays instant.

``kspec.build(spec)`` is the public way to compile a spec. Because this package is also
called ``build``, importing any ``kspec.build.*`` module makes ``kspec.build`` refer to the
package; the package is therefore made callable, so ``kspec.build(spec)`` always means
:func:`build_model`, whichever was imported first.
"""

import sys
import types

from kspec.build.model import build_model

__all__ = ["build_model"]


class _CallablePackage(types.ModuleType):
    def __call__(self, spec, *args, **kwargs):
        """Build the Keras model a spec describes (see :func:`build_model`)."""
        return build_model(spec, *args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
