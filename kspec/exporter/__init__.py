"""Export for serving: SavedModels with a named signature, TFLite and ``.keras`` files.

Every export is checked (loaded back, run twice, compared with the Keras model) and
published atomically as ``MODELS_DIR/NAME/VERSION/``, the layout TensorFlow Serving reads.
The public entry point is ``kspec.export`` (:func:`kspec.exporter.api.export`).

Example:
    >>> import kspec
    >>> result = kspec.export("runs/quickstart-20260101-120000", out="models",
    ...                       fold_batchnorm=True, class_outputs=True)
    >>> result.path, result.check.passed
    (PosixPath('models/quickstart/1'), True)

Importing this package does not import TensorFlow; :func:`kspec.export` does.
"""

from kspec.exporter.errors import ExportError, ExportWriteError, ParityError
from kspec.exporter.metadata import read_metadata

__all__ = ["ExportError", "ExportWriteError", "ParityError", "read_metadata"]
