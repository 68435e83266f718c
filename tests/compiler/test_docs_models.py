"""Every complete spec in docs/models.md validates (no TensorFlow needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import kspec

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
          if re.search(r"^kspec: 1$", b, re.M)]


def test_the_models_doc_has_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("text", BLOCKS, ids=[re.search(r"^name: (\S+)", b, re.M).group(1)
                                              for b in BLOCKS])
def test_doc_examples_validate(text):
    spec = kspec.load_spec(yaml.safe_load(text))
    assert spec.name
