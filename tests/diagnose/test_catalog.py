"""docs/components.md is generated from the registries and must be up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from kspec import registry
from kspec.diagnose.catalog import ELSEWHERE, SECTIONS, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "components.md"


def test_committed_page_is_current():
    assert DOC.read_text() == render_markdown(), (
        "docs/components.md is stale: run  python -m kspec.diagnose.catalog > "
        "docs/components.md")


@pytest.mark.parametrize("kind", list(SECTIONS))
def test_every_name_and_description_is_listed(kind):
    page = render_markdown()
    for entry in registry.ALL[kind].entries():
        if "user" in entry.tags:
            continue
        assert entry.description, f"{kind} {entry.name!r} has no description"
        assert f"| `{entry.name}` | {entry.description.replace('|', chr(92) + '|')} |" in page


def test_user_components_stay_out_of_the_page():
    registry.load_builtins()
    registry.ACTIVATIONS.register("zz_user_only", lambda: "relu", description="mine",
                                  tags=("user",))
    try:
        assert "zz_user_only" not in render_markdown()
    finally:
        registry.ACTIVATIONS.unregister("zz_user_only")


def test_every_registry_has_a_section():
    """A new registry cannot be left out of the page by accident."""
    assert set(registry.ALL) - ELSEWHERE == set(SECTIONS)
