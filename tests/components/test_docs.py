"""Every whole spec in docs/custom-components.md validates, with no lint warning."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

from kspec import load_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-components.md"
BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S) if "model:" in b]


def test_the_page_has_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("text", BLOCKS, ids=lambda t: yaml.safe_load(t)["name"])
def test_yaml_examples_validate_quietly(text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = load_spec(text)
    assert spec.name == yaml.safe_load(text)["name"]
