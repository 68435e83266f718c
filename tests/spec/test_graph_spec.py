"""Graph, transfer, phase, target and ensemble sections: bad specs fail with exact paths.

These tests validate specs only (no TensorFlow).
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

import kspec
from kspec.errors import SpecError
from tests.helpers.graphs import graph_spec, set_path, valid


def test_a_valid_graph_spec_loads_with_named_outputs():
    spec = kspec.load_spec(valid(graph_spec()))
    assert spec.model.is_graph
    assert spec.model.output_names() == ["label", "value"]
    assert spec.model.output_blocks() == {"label": "cls", "value": "reg"}


BAD = [
    ("unknown block", "model.blocks.2.inputs", ["bdy"], "model.blocks[2].inputs[0]",
     ["unknown input or block 'bdy'", "did you mean 'body'"]),
    ("cycle", "model.blocks.0.inputs", ["trunk"], "model.blocks",
     ["cycle", "stem -> trunk", "-> stem"]),
    ("unknown definition", "model.blocks.1.use", "rse", "model.blocks[1].use",
     ["unknown definition 'rse'", "did you mean 'res'"]),
    ("merge of one input", "model.blocks.4.inputs", ["pool"], "model.blocks[4].merge",
     ["merges a single input"]),
    ("two inputs, no merge", "model.blocks.5.inputs", ["trunk", "tab"],
     "model.blocks[5].inputs", ["takes 2 inputs", "merge: concatenate"]),
    ("duplicate block name", "model.blocks.3.name", "stem", "model.blocks[3].name",
     ["'stem' is already used by blocks[0]"]),
    ("output from unknown block", "model.outputs.1.block", "regg", "model.outputs[1].block",
     ["unknown block 'regg'", "did you mean 'reg'"]),
    ("bad merge name", "model.blocks.4.merge", "concat", "model.blocks[4].merge",
     ["invalid value 'concat'", "concatenate"]),
    ("block with layers and use", "model.blocks.1.layers", [{"type": "flatten"}],
     "model.blocks[1]", ["one of 'layers', 'use' or 'base'"]),
]


@pytest.mark.parametrize("what,key,value,path,words", BAD, ids=[b[0] for b in BAD])
def test_bad_graph_specs_name_the_blocks(what, key, value, path, words):
    with pytest.raises(SpecError) as info:
        kspec.load_spec(set_path(valid(graph_spec()), key, value))
    message = str(info.value)
    assert info.value.path.startswith(path), message
    for word in words:
        assert word in message, message


def test_an_unused_block_is_named():
    spec = valid(graph_spec())
    spec["model"]["blocks"].append({"name": "spare", "inputs": "trunk",
                                    "layers": [{"type": "dense", "units": 2}]})
    with pytest.raises(SpecError, match=r"model\.blocks\[7\]: block\(s\) 'spare' lead to no "
                       r"output"):
        kspec.load_spec(spec)


def test_an_unused_input_is_named():
    spec = valid(graph_spec())
    spec["model"]["inputs"].append({"name": "extra", "shape": [2]})
    with pytest.raises(SpecError, match=r"model\.inputs\[2\]: input 'extra' is not used"):
        kspec.load_spec(spec)


def test_graph_keys_in_a_stack_spec_are_refused(tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["model"]["outputs"] = [{"name": "a"}]
    with pytest.raises(SpecError, match=r"model\.outputs: 'outputs' belongs to the graph form"):
        kspec.load_spec(spec)


BASES = [
    ({"run": "a", "path": "b.keras"}, "model.base", "exactly one of 'run', 'path'"),
    ({"application": "MobileNetv2"}, "model.base.application",
     "did you mean 'MobileNetV2'"),
    ({"application": "MobileNetV2", "weights": "imagenet"}, "model.base.weights",
     "never downloads"),
    ({"path": "x.keras", "weights": "w.h5"}, "model.base.weights",
     "applies only to an 'application' base"),
]


@pytest.mark.parametrize("base,path,words", BASES, ids=[b[2][:20] for b in BASES])
def test_bad_transfer_bases(tiny_spec, base, path, words):
    spec = copy.deepcopy(tiny_spec)
    spec["model"]["base"] = base
    with pytest.raises(SpecError) as info:
        kspec.load_spec(spec)
    assert info.value.path == path and words in str(info.value), str(info.value)


TRAINING = [
    ({"phases": [{"trainable": {"pattern": "conv("}}]}, "training.phases[0].trainable",
     "not a regular expression"),
    ({"phases": [{"trainable": "heads"}]}, "training.phases[0].trainable", "heads"),
    ({"targets": {"output": {"threshold": 1, "column": 0}}}, "training.targets.output.column",
     "one of label_map, threshold or column"),
    ({"tta": {"scheme": "twelve_crop"}}, "training.tta.scheme", "ten_crop"),
]


@pytest.mark.parametrize("extra,path,words", TRAINING, ids=[t[1] for t in TRAINING])
def test_bad_training_sections(tiny_spec, extra, path, words):
    spec = copy.deepcopy(tiny_spec)
    spec["training"].update(extra)
    with pytest.raises(SpecError) as info:
        kspec.load_spec(spec)
    assert info.value.path.startswith(path) and words in str(info.value), str(info.value)


def test_ensemble_seeds_must_match_members(tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["ensemble"] = {"members": 3, "seeds": [1, 2]}
    with pytest.raises(SpecError, match=r"ensemble\.seeds: 2 seeds for 3 members"):
        kspec.load_spec(spec)


def test_validating_a_graph_spec_never_imports_tensorflow(tmp_path):
    import json

    file = tmp_path / "g.json"
    file.write_text(json.dumps(valid(graph_spec())))
    code = ("import sys, kspec; kspec.load_spec(sys.argv[1]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(file)], check=True)


def test_all_layers_lists_stack_block_and_definition_layers():
    spec = kspec.load_spec(valid(graph_spec()))
    paths = [p for p, _ in spec.model.all_layers()]
    assert paths[0] == "model.blocks[0].layers[0]"
    assert "model.definitions.res.layers[0]" in paths and len(paths) == 6


def test_an_output_named_like_an_input_is_refused():
    spec = valid(graph_spec())
    spec["model"]["outputs"][0]["name"] = "image"
    with pytest.raises(SpecError, match=r"model\.outputs\[0\]\.name: output name 'image' is "
                       r"already the name of inputs\[0\]"):
        kspec.load_spec(spec)
