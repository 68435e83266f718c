"""Loading specs: files, strings, dicts, overrides, YAML round trip, JSON Schema, no TF."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kspec
from kspec.errors import SpecError
from kspec.spec import apply_overrides, json_schema, parse_key_path, to_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_load_from_file_string_dict_and_spec_agree(tiny_spec):
    text = to_yaml(kspec.load_spec(tiny_spec))
    from_text = kspec.load_spec(text)
    assert from_text == kspec.load_spec(tiny_spec)
    assert kspec.load_spec(from_text) == from_text
    assert kspec.load_spec(json.dumps(tiny_spec)) == from_text  # JSON is YAML


def test_defaults_are_filled_in_the_resolved_spec(tiny_spec):
    spec = kspec.load_spec(tiny_spec).to_dict()
    assert spec["model"]["layers"][0]["kernel_initializer"] == "glorot_uniform"
    assert spec["training"]["callbacks"]["backup_and_restore"] is True
    assert spec["kspec"] == 1


def test_keras_names_and_aliases_accepted(tiny_spec):
    tiny_spec["model"]["layers"][0].update(
        kernel_initializer="xavier_uniform",
        activation={"type": "leaky_relu", "negative_slope": 0.1},
    )
    tiny_spec["training"]["loss"] = "scce"
    spec = kspec.load_spec(tiny_spec)
    assert spec.model.layers[0].activation == {"type": "leaky_relu", "negative_slope": 0.1}


@pytest.mark.parametrize(
    "key,parts",
    [("training.epochs", ["training", "epochs"]),
     ("model.layers[2].units", ["model", "layers", 2, "units"]),
     ("a[0][1]", ["a", 0, 1])],
)
def test_parse_key_path(key, parts):
    assert parse_key_path(key) == parts


@pytest.mark.parametrize("key", ["", "a..b", "a[x]", "a.[0"])
def test_parse_key_path_rejects_garbage(key):
    with pytest.raises(SpecError):
        parse_key_path(key)


def test_overrides_parse_values_as_yaml(tiny_spec):
    spec = kspec.load_spec(
        tiny_spec,
        ["training.epochs=7", "model.layers[0].units=32", "training.optimizer.learning_rate=1e-3",
         "model.layers[0].activation={type: leaky_relu, negative_slope: 0.3}"],
    )
    assert spec.training.epochs == 7
    assert spec.model.layers[0].units == 32
    assert spec.training.optimizer["learning_rate"] == pytest.approx(1e-3)
    assert spec.model.layers[0].activation["negative_slope"] == 0.3


def test_overrides_are_validated_and_point_at_the_key(tiny_spec):
    with pytest.raises(SpecError) as info:
        kspec.load_spec(tiny_spec, {"model.layers[0].units": 0})
    assert info.value.path == "model.layers[0].units"
    with pytest.raises(SpecError, match="no such list item"):
        apply_overrides(tiny_spec, {"model.layers[9].units": 3})
    with pytest.raises(SpecError, match="KEY.PATH=VALUE"):
        apply_overrides(tiny_spec, ["training.epochs"])


def test_validation_never_imports_tensorflow():
    code = (
        "import sys, kspec\n"
        "for p in ['quickstart', 'convnet', 'mlp', 'regression']:\n"
        "    kspec.load_spec(f'specs/{p}.yaml')\n"
        "kspec.json_schema()\n"
        "bad = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_json_schema_describes_layers_and_forbids_unknown_keys():
    schema = json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "kspec model spec"
    for name in ("Dense", "Conv2D", "BatchNorm", "TrainingSpec", "DataSpec"):
        assert name in schema["$defs"], name
    assert schema["$defs"]["Dense"]["additionalProperties"] is False
    assert '"const": "dense"' in text or '"enum": ["dense"]' in text


def test_every_example_spec_is_valid_under_the_json_schema_and_typos_are_not():
    """Editors validate with the JSON Schema: it must accept what kspec accepts (search
    spaces and graph forms included) and flag what it refuses."""
    import copy

    import jsonschema

    from kspec.spec.loader import parse_text

    validator = jsonschema.Draft202012Validator(json_schema())
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    assert specs
    for path in specs:
        errors = list(validator.iter_errors(parse_text(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message[:200]}"
    quick = parse_text((ROOT / "specs/quickstart.yaml").read_text())
    for change in ({"unitz": 3}, {"units": "eight"}, {"units": {"$choise": [1, 2]}}):
        bad = copy.deepcopy(quick)
        bad["model"]["layers"][1].update(change)
        assert list(validator.iter_errors(bad)), change
    good = copy.deepcopy(quick)
    good["model"]["layers"][1]["units"] = {"$int": {"min": 8, "max": 64, "step": 8}}
    assert not list(validator.iter_errors(good))
