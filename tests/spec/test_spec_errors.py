"""A table of bad specs: each must fail with the exact path and a useful message."""

from __future__ import annotations

import copy

import pytest

import kspec
from kspec.errors import SpecError


def _with(spec: dict, path: str, value) -> dict:
    """Copy ``spec`` and set a dotted path (list indices as numbers)."""
    spec = copy.deepcopy(spec)
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = spec
    for p in parts[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return spec


_DELETE = object()

# (description, key path to change, new value, expected error path, words in the message)
BAD = [
    ("typo in activation", "model.layers.0.activation", "rleu",
     "model.layers[0].activation", ["unknown activation 'rleu'", "did you mean 'relu'"]),
    ("typo in layer type", "model.layers.1.type", "dnse",
     "model.layers[1].type", ["unknown type 'dnse'", "did you mean 'dense'"]),
    ("typo in a key", "model.layers.0.unitz", 8,
     "model.layers[0].unitz", ["unknown key 'unitz'", "did you mean 'units'"]),
    ("typo in a top-level key", "trainig", {},
     "trainig", ["unknown key 'trainig'", "did you mean 'training'"]),
    ("typo in initializer", "model.layers.0.kernel_initializer", "he_normel",
     "model.layers[0].kernel_initializer", ["unknown initializer", "did you mean 'he_normal'"]),
    ("typo in loss", "training.loss", "sparse_categorical_crossentropi",
     "training.loss", ["unknown loss", "did you mean 'sparse_categorical_crossentropy'"]),
    ("typo in metric", "training.metrics", ["acuracy"],
     "training.metrics[0]", ["unknown metric 'acuracy'", "did you mean 'accuracy'"]),
    ("typo in optimizer", "training.optimizer", "adamm",
     "training.optimizer", ["unknown optimizer 'adamm'", "did you mean 'adam'"]),
    ("unknown optimizer parameter", "training.optimizer", {"type": "sgd", "momentun": 0.9},
     "training.optimizer.momentun", ["unknown parameter 'momentun'", "did you mean 'momentum'"]),
    ("unknown schedule", "training.optimizer",
     {"type": "adam", "learning_rate": {"type": "cosin", "initial_learning_rate": 0.1}},
     "training.optimizer.learning_rate.type", ["unknown learning-rate schedule 'cosin'",
                                                "did you mean 'cosine'"]),
    ("regularizer parameter typo", "model.layers.0.kernel_regularizer", {"type": "l2", "l": 0.1},
     "model.layers[0].kernel_regularizer.l", ["unknown parameter 'l'"]),
    ("wrong type for units", "model.layers.0.units", "eight",
     "model.layers[0].units", ["valid integer", "'eight'"]),
    ("negative units", "model.layers.0.units", -3,
     "model.layers[0].units", ["greater than 0", "-3"]),
    ("dropout rate out of range", "model.layers.0", {"type": "dropout", "rate": 1.5},
     "model.layers[0].rate", ["less than 1", "1.5"]),
    ("epochs zero", "training.epochs", 0, "training.epochs", ["greater than 0"]),
    ("batch size not a number", "training.batch_size", "big",
     "training.batch_size", ["valid integer"]),
    ("bad padding", "model.layers.0", {"type": "conv1d", "filters": 2, "kernel_size": 3,
                                       "padding": "sme"},
     "model.layers[0].padding", ["invalid value 'sme'", "did you mean 'same'", "valid"]),
    ("splits leave no training data", "data.splits", {"validation": 0.5, "test": 0.5},
     "data.splits", ["must leave data for training"]),
    ("missing loss", "training.loss", _DELETE, "training.loss", ["required key is missing"]),
    ("missing units", "model.layers.0.units", _DELETE,
     "model.layers[0].units", ["required key is missing"]),
    ("missing layers", "model.layers", _DELETE, "model.layers", ["required key is missing"]),
    ("empty layer list", "model.layers", [], "model.layers", ["at least 1"]),
    ("layer without type", "model.layers.0", {"units": 3},
     "model.layers[0].type", ["missing 'type'", "dense"]),
    ("shape with zero", "model.inputs.0.shape", [0, 3],
     "model.inputs[0].shape[0]", ["greater than 0"]),
    ("bad reshape", "model.layers.0", {"type": "reshape", "target_shape": [-1, -1]},
     "model.layers[0].target_shape", ["at most one dimension may be -1"]),
    ("duplicate layer names", "model.layers.1.name", "same",
     "model.layers[1].name", ["already used by layers[0]"]),
    ("wrong format version", "kspec", 2, "kspec", ["invalid value 2"]),
    ("bad seed", "seed", -1, "seed", ["greater than or equal to 0"]),
    ("unknown bundled source type", "data.source", {"type": "parquet", "path": "x"},
     "data.source.type", ["unknown type 'parquet'"]),
    ("early stopping typo", "training.callbacks", {"early_stoping": {}},
     "training.callbacks.early_stoping", ["did you mean 'early_stopping'"]),
]


@pytest.mark.parametrize("desc,key,value,path,words", BAD, ids=[b[0] for b in BAD])
def test_bad_spec_names_path_and_reason(tiny_spec, desc, key, value, path, words):
    spec = tiny_spec
    if key == "model.layers.1.name":
        spec = _with(spec, "model.layers.0.name", "same")
    bad = _with(spec, key, value)
    with pytest.raises(SpecError) as info:
        kspec.load_spec(bad)
    paths = [e.path for e in info.value.errors]
    assert path in paths, f"{desc}: expected path {path!r}, got {paths}: {info.value}"
    message = str(next(e for e in info.value.errors if e.path == path))
    for word in words:
        assert word in message, f"{desc}: {word!r} not in {message!r}"


def test_all_problems_reported_at_once(tiny_spec):
    bad = _with(_with(tiny_spec, "training.epochs", -1), "model.layers.0.activation", "rleu")
    with pytest.raises(SpecError) as info:
        kspec.load_spec(bad)
    assert {e.path for e in info.value.errors} == {"training.epochs", "model.layers[0].activation"}
    assert str(info.value).startswith("<dict>: 2 problems in the spec")


def test_yaml_errors_and_duplicate_keys_are_spec_errors(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("name: a\nname: b\nmodel: {layers: [{type: flatten}]}\ntraining: {loss: mse}\n")
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        kspec.load_spec(p)
    with pytest.raises(SpecError, match="not valid YAML"):
        kspec.load_spec("model: [unclosed\n")
    with pytest.raises(SpecError, match="spec file not found"):
        kspec.load_spec("nope/missing.yaml")
    with pytest.raises(SpecError, match="mapping at the top level"):
        kspec.load_spec("- just\n- a list\n")


def test_build_time_error_names_the_layer(tiny_spec):
    """Shape problems only visible when building still come back with the spec path."""
    from kspec.compiler.model import build_model

    bad = copy.deepcopy(tiny_spec)
    bad["model"]["inputs"][0]["shape"] = [4]
    bad["model"]["layers"].insert(1, {"type": "conv2d", "filters": 2, "kernel_size": 3})
    with pytest.raises(SpecError) as info:
        build_model(bad)
    assert info.value.path == "model.layers[1]"
    assert "conv2d" in str(info.value) and "(None, 8)" in str(info.value)


def test_missing_shape_without_data_is_explained(tiny_spec):
    from kspec.compiler.model import build_model

    with pytest.raises(SpecError) as info:
        build_model(tiny_spec)
    assert info.value.path == "model.inputs[0].shape"
    assert "no data to infer it from" in str(info.value)
