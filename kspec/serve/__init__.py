"""``kspec serve``: TF Serving's REST API over the SavedModels that ``kspec export`` writes.

A client written for TensorFlow Serving works against it unchanged::

    GET  /v1/models/NAME[/versions/V]            version status
    GET  /v1/models/NAME[/versions/V]/metadata   the signature_def
    POST /v1/models/NAME[/versions/V]:predict    {"instances": [...]} or {"inputs": ...}

Concurrent requests are batched into one signature call; new version folders are loaded,
checked and switched to without failing a request in flight. Models run through
``tf.saved_model.load`` signatures; the server never imports Keras.

Example:
    >>> from kspec.serve import serve, ServeOptions
    >>> serve("models", port=8501, options=ServeOptions(max_batch_size=64))

Importing this package imports neither TensorFlow nor the HTTP stack; :func:`serve` and
:func:`make_app` do.
"""

from __future__ import annotations

from typing import Any

from kspec.serve.errors import ServingError
from kspec.serve.options import ServeOptions


def serve(models_dir: Any, host: str = "127.0.0.1", port: int = 8501, **kwargs: Any) -> None:
    """Serve ``models_dir`` until Ctrl-C or SIGTERM; see :func:`kspec.serve.app.serve`."""
    from kspec.serve.app import serve as _serve

    _serve(models_dir, host, port, **kwargs)


def make_app(models_dir: Any, options: ServeOptions | None = None, **kwargs: Any):
    """The ASGI application; see :func:`kspec.serve.app.make_app`."""
    from kspec.serve.app import make_app as _make_app

    return _make_app(models_dir, options, **kwargs)


__all__ = ["ServeOptions", "ServingError", "make_app", "serve"]
