"""Export for serving: SavedModels with a named signature, TFLite and ``.keras`` files.

Every export is checked (loaded back, run twice, compared with the Keras model) and
published atomically as ``MODELS_DIR/NAME/VERSION/``, the layout TensorFlow Serving reads.

Example:
    >>> import kspec
    >>> result = kspec.export("runs/quickstart-20260101-120000", out="models",
    ...                       fold_batchnorm=True, class_outputs=True)
    >>> result.path, result.check.passed
    (PosixPath('models/quickstart/1'), True)

Importing this package does not import TensorFlow; :func:`export` does.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from kspec.export.errors import ExportError, ParityError
from kspec.export.metadata import read_metadata


def export(source: Any, out: Any = "models", **kwargs: Any):
    """Export a trained model for serving; see :func:`kspec.export.api.export`."""
    from kspec.export.api import export as _export

    return _export(source, out, **kwargs)


class _CallableModule(types.ModuleType):
    """``kspec.export`` is both this package and the function: once the package has been
    imported, the name ``kspec.export`` refers to the module, so the module forwards calls
    to :func:`export` and ``kspec.export(run)`` works whichever was loaded first."""

    def __call__(self, *args: Any, **kwargs: Any):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["ExportError", "ParityError", "export", "read_metadata"]
