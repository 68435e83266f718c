"""docs/diagnostics.md stays true: its spec snippets validate, its option tables name real
options, and it lists every transform and every finding."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import kspec
from kspec.diagnose import findings
from kspec.diagnose.transforms import KINDS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "diagnostics.md").read_text()


def test_yaml_snippets_validate_in_an_example_spec():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 4
    for text in blocks:
        # Fairness snippets go into the spec with data.groups, the others into the quickstart.
        base = "fairness_smiles" if "label_columns" in text else "quickstart"
        spec = yaml.safe_load((ROOT / f"specs/{base}.yaml").read_text())
        fragment = yaml.safe_load(text)["training"]
        for key, value in fragment.items():
            if isinstance(value, dict) and isinstance(spec["training"].get(key), dict):
                spec["training"][key].update(value)
            else:
                spec["training"][key] = value
        kspec.load_spec(spec)


def test_cli_options_in_the_tables_exist():
    from kspec.cli import _parser

    choices = _parser()._subparsers._group_actions[0].choices
    helps = "".join(choices[name].format_help() for name in ("diagnose", "report",
                                                             "evaluate"))
    options = re.findall(r"^\| `(--[a-z-]+)", DOC, re.M)
    assert len(options) >= 10
    for option in options:
        assert option in helps, option


def test_every_transform_and_finding_is_documented():
    for name in KINDS:
        assert f"| `{name}" in DOC, name
    source = Path(findings.__file__).read_text()
    codes = set(re.findall(r'Finding\(\s*(?:"\w+"|severity),\s*"(\w+)"', source))
    assert len(codes) >= 9
    for code in codes:
        assert f"| `{code}` |" in DOC, code
