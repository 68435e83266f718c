"""The data docs' YAML examples validate; validating a data section never imports TF."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kspec.validation import load_spec

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "data.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC, re.S)


def test_the_docs_have_examples():
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[f"yaml{i}" for i in range(len(BLOCKS))])
def test_every_yaml_example_in_the_docs_validates(block):
    raw = yaml.safe_load(block)
    inputs = [{"name": "features"}]
    source = raw["data"].get("source", {})
    names = list((source.get("inputs") or {}))
    if names:
        inputs = [{"name": n} for n in names]
    model = {"inputs": inputs, "layers": [{"type": "dense", "units": 2}]}
    if len(inputs) > 1:
        model = {"inputs": inputs, "blocks": [
            {"name": "joined", "inputs": names, "merge": "concatenate",
             "layers": [{"type": "dense", "units": 2}]}]}
    training = {"optimizer": "adam", "loss": "mse"}
    if "groups" in raw["data"]:  # the linter wants the loss and a metric that read groups
        training.update(loss={"type": "label_columns", "loss": "mse"},
                        metrics=["statistical_parity"])
    spec = load_spec({**raw, "model": model, "training": training})
    assert spec.data.model_dump(exclude_defaults=True)


def test_validating_a_data_section_does_not_import_tensorflow():
    code = (
        "import sys, kspec\n"
        "kspec.load_spec('specs/augmented_digits.yaml')\n"
        "kspec.load_spec('specs/normalized_iris.yaml')\n"
        "bad = [m for m in ('tensorflow', 'keras', 'tensorflow_datasets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
