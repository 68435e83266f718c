"""Component tests build ~150 tiny models; clearing the Keras session after each one costs
~0.4 s, more than the test itself, so here it is cleared every 25 tests instead."""

from __future__ import annotations

import sys

import pytest

_count = {"n": 0}


@pytest.fixture(autouse=True)
def _clear_keras_session():  # overrides the suite-wide fixture of the same name
    yield
    _count["n"] += 1
    if _count["n"] % 25 == 0 and "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
