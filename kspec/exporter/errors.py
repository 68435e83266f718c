"""Errors raised by export and predict."""

from __future__ import annotations

from typing import Any


class ExportError(ValueError):
    """An export that cannot be made: bad source, name, version or option."""


class ExportWriteError(ExportError):
    """The export could not be written (a full or read-only disk, no permission); nothing was
    published and earlier versions are untouched."""


class ParityError(ExportError):
    """The written model does not reproduce the Keras model; nothing was published.

    Attributes:
        report: the :class:`kspec.exporter.parity.ParityReport` that failed.
    """

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report
