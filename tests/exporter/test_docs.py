"""The examples in docs/export.md stay valid."""

from __future__ import annotations

import re
from pathlib import Path

import kspec

DOC = Path(__file__).resolve().parents[2] / "docs" / "export.md"


def test_every_yaml_example_in_the_export_guide_is_a_valid_spec():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for text in blocks:
        spec = kspec.load_spec(text)
        assert spec.model.inputs[0].name == "image" and spec.model.output_name == "digit"


def test_cli_options_in_the_guide_exist():
    from kspec.cli import _parser

    help_text = _parser()._subparsers._group_actions[0].choices["export"].format_help()
    for option in re.findall(r"\| `(--[a-z-]+)", DOC.read_text()):
        assert option in help_text, option
