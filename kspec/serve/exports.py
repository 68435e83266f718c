"""What ``kspec serve`` takes from ``kspec.exporter``, in one place (so that moving the
export package touches one import block)."""

from __future__ import annotations

from kspec.exporter.layout import check_name, versions
from kspec.exporter.signature import SIGNATURE_KEY

__all__ = ["SIGNATURE_KEY", "check_name", "versions"]
