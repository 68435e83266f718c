"""The README's examples stay true: its quickstart is specs/quickstart.yaml, its snippets
validate, and the commands it shows exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import kspec
from kspec.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)


def test_readme_quickstart_is_the_quickstart_spec():
    shown = kspec.load_spec(YAML_BLOCKS[0]).to_dict()
    real = kspec.load_spec(ROOT / "specs/quickstart.yaml").to_dict()
    shown.pop("description"), real.pop("description")
    assert shown == real


def test_readme_search_snippet_is_valid_in_the_quickstart():
    spec = yaml.safe_load(YAML_BLOCKS[0])
    snippet = yaml.safe_load(YAML_BLOCKS[1])
    spec["model"]["layers"][1:3] = snippet["model"]["layers"]
    spec["training"]["optimizer"] = snippet["training"]["optimizer"]
    spec["search"] = snippet["search"]
    loaded = kspec.load_spec(spec)
    assert loaded.model.layers[1].units == 32  # the first choice is the default


def test_readme_commands_exist():
    shell = "\n".join(re.findall(r"```bash\n(.*?)```", README, re.S))
    shown = set(re.findall(r"^kspec (\w+)", shell, re.M))
    assert shown and shown <= set(COMMANDS), shown - set(COMMANDS)
    assert "kspec fit specs/quickstart.yaml" in README
