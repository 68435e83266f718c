"""Guards that teach: spec checks beyond the schema (run by the loader, TensorFlow-free).

``lint_spec`` raises :class:`SpecError` for combinations that cannot be right and returns
warnings for ones that are probably wrong.
"""

from __future__ import annotations

from kspec.spec.root import Spec


def lint_spec(spec: Spec) -> list[str]:
    """Check ``spec``; return warning messages (each starting with its spec path)."""
    return []
