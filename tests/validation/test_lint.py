"""The guards that teach: errors and warnings with the exact spec path (no TensorFlow)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest

from kspec import SpecError, load_spec
from kspec.validation.lint import lint_spec

ROOT = Path(__file__).resolve().parents[2]


def _spec(layers, loss="mse", shape=(4,), **training):
    return {"model": {"inputs": [{"name": "x", "shape": list(shape)}], "layers": layers},
            "training": {"loss": loss, **training}}


def _warnings(raw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_spec(raw)
    return [str(w.message) for w in caught]


D = lambda units, act=None, **kw: {"type": "dense", "units": units,  # noqa: E731
                                   **({"activation": act} if act else {}), **kw}
OUT_SOFTMAX = D(3, "softmax")

ERRORS = [
    ("softmax twice",
     _spec([OUT_SOFTMAX], {"type": "categorical_crossentropy", "from_logits": True}),
     "training.loss.from_logits", "applies softmax again"),
    ("sigmoid twice via an activation layer",
     _spec([D(1), {"type": "dropout", "rate": 0.1}, {"type": "activation",
                                                     "activation": "sigmoid"}],
           {"type": "bce", "from_logits": True}),
     "training.loss.from_logits", "already applies 'sigmoid' (model.layers[2].activation)"),
    ("softmax on one unit", _spec([D(1, "softmax")], "bce"),
     "model.layers[0].activation", "softmax over a single unit is always 1.0"),
    ("sparse labels, one unit", _spec([D(1, "sigmoid")], "sparse_categorical_crossentropy"),
     "training.loss", "needs one output unit per class"),
    ("fixed kernel on dense", _spec([D(4, kernel_initializer="sobel_x"), D(1)]),
     "model.layers[0].kernel_initializer", "image filter for conv2d kernels"),
    ("3x3 filter in a 2x2 kernel",
     _spec([{"type": "conv2d", "filters": 1, "kernel_size": 2, "kernel_initializer": "sharpen"},
            {"type": "flatten"}, D(1)], shape=(5, 5, 1)),
     "model.layers[0].kernel_size", "sharpen is a 3x3 filter"),
    ("identity matrix on conv",
     _spec([{"type": "conv2d", "filters": 1, "kernel_size": 3, "kernel_initializer": "identity"},
            {"type": "flatten"}, D(1)], shape=(5, 5, 1)),
     "model.layers[0].kernel_initializer", "identity_kernel"),
    ("maxout pieces", _spec([D(6, {"type": "maxout", "pieces": 4}), D(1)]),
     "model.layers[0].activation.pieces", "divisible by 4, but the layer has 6"),
    ("fairness metric without packed targets", _spec([D(1, "sigmoid")], "bce",
                                                     metrics=["statistical_parity"]),
     "training.metrics[0]", "type: label_columns, loss: binary_crossentropy"),
    ("group out of range", _spec([D(1, "sigmoid")], {"type": "label_columns"},
                                 metrics=[{"type": "subgroup_accuracy", "group": 2}]),
     "training.metrics[0].group", "group 2 does not exist with num_groups 2"),
    ("class count", _spec([OUT_SOFTMAX], "cce", metrics=["balanced_accuracy"]),
     "training.metrics[0]", "counts 2 classes but the output has 3 units"),
    ("class id", _spec([OUT_SOFTMAX], "cce", metrics=[{"type": "per_class_accuracy",
                                                       "class_id": 3}]),
     "training.metrics[0].class_id", "class 3 does not exist"),
    ("wrapped loss checked too", _spec([D(1, "sigmoid")], {"type": "label_columns",
                                                          "loss": "bcx"}),
     "training.loss.loss", "did you mean 'bce'"),
]


@pytest.mark.parametrize("raw,path,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_place(raw, path, message):
    with pytest.raises(SpecError) as info:
        load_spec(raw)
    assert info.value.path == path
    assert message in str(info.value)


def _graph(head_layers, loss):
    return {"model": {"inputs": [{"name": "x", "shape": [4]}], "blocks": [
        {"name": "trunk", "inputs": "x", "layers": [D(8, "relu", kernel_initializer="he_normal")]},
        {"name": "head_a", "inputs": "trunk", "layers": head_layers},
        {"name": "head_b", "inputs": "trunk", "layers": [D(1)]}],
        "outputs": [{"name": "a", "block": "head_a"}, {"name": "b", "block": "head_b"}]},
        "training": {"loss": loss}}


WARNINGS = [
    ("probability loss on a linear output", _spec([D(3)], "categorical_crossentropy"),
     "training.loss: 'categorical_crossentropy' expects probabilities", "activation: softmax"),
    ("zeros on a hidden layer", _spec([D(4, "relu", kernel_initializer="zeros"), D(1)]),
     "model.layers[0].kernel_initializer: 'zeros'", "symmetry is never broken"),
    ("He for tanh", _spec([D(4, "tanh", kernel_initializer="he_uniform"), D(1)]),
     "model.layers[0].kernel_initializer: 'he_uniform'", "use glorot_uniform"),
    ("Glorot for ReLU after batch norm",
     _spec([D(4, kernel_initializer="xavier_normal"), {"type": "batch_norm"},
            {"type": "activation", "activation": "relu"}, D(1)]),
     "model.layers[0].kernel_initializer: 'glorot_normal'", "model.layers[2].activation"),
    ("selu without lecun", _spec([D(4, "selu"), D(1)]),
     "model.layers[0].kernel_initializer", "lecun_normal"),
    ("sigmoid for exclusive classes", _spec([D(3, "sigmoid")], "categorical_crossentropy"),
     "training.loss: 'categorical_crossentropy' treats the classes as exclusive", "softmax"),
    ("hinge on probabilities", _spec([D(1, "sigmoid")], "hinge"),
     "training.loss: 'hinge' expects raw scores", "{-1, 1}"),
    ("poisson on a linear output", _spec([D(1)], "poisson"),
     "training.loss: 'poisson' takes log(y_pred)", "softplus"),
    ("kl on sigmoid", _spec([D(3, "sigmoid")], "kld"),
     "training.loss: 'kl_divergence' compares probability distributions", "softmax"),
    ("graph output, per-output loss", _graph([D(3)], {"a": "cce", "b": "mse"}),
     "training.loss.a: 'categorical_crossentropy' expects probabilities",
     "model.blocks[1].layers[0].activation"),
]


@pytest.mark.parametrize("raw,start,fragment", [w[1:] for w in WARNINGS],
                         ids=[w[0] for w in WARNINGS])
def test_warnings_start_with_the_path(raw, start, fragment):
    found = _warnings(raw)
    assert len(found) == 1, found
    assert found[0].startswith(start), found[0]
    assert fragment in found[0]


def test_graph_outputs_through_definitions_and_merges():
    raw = {"model": {"inputs": [{"name": "x", "shape": [4]}],
                     "definitions": {"head": {"layers": [D(3), {"type": "dropout", "rate": 0.1}]}},
                     "blocks": [
                         {"name": "left", "inputs": "x", "layers": [D(4, "relu")]},
                         {"name": "right", "inputs": "x", "layers": [D(4, "tanh")]},
                         {"name": "both", "inputs": ["left", "right"], "merge": "concatenate"},
                         {"name": "cls", "inputs": "both", "use": "head"}],
                     "outputs": [{"name": "cls"}, {"name": "both"}]},
           "training": {"loss": {"cls": "cce", "both": "mse"}}}
    found = _warnings(raw)
    # The definition's last weighted layer is linear: the warning points into the definition.
    assert len(found) == 1 and "model.definitions.head.layers[0].activation" in found[0]


CLEAN = [
    _spec([D(8, "relu", kernel_initializer="he_normal"), OUT_SOFTMAX], "cce"),
    _spec([D(8, "tanh"), D(3)], {"type": "cce", "from_logits": True}),
    _spec([D(8, "prelu", kernel_initializer="he_normal"), D(1, "sigmoid",
                                                            kernel_initializer="zeros")], "bce"),
    _spec([D(8, {"type": "maxout", "pieces": 4}), D(1, "softplus")], "poisson"),
    _spec([{"type": "conv2d", "filters": 2, "kernel_size": 5, "kernel_initializer":
            {"type": "gaussian_blur", "sigma": 1.0}, "trainable": False},
           {"type": "flatten"}, D(1, "sigmoid")], "bce", shape=(8, 8, 1)),
    _spec([D(1, "sigmoid")], {"type": "label_columns", "loss": "bce"},
          metrics=["subgroup_accuracy_gap"]),
]


@pytest.mark.parametrize("raw", CLEAN)
def test_good_specs_pass_quietly(raw):
    assert _warnings(copy.deepcopy(raw)) == []


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_lint_clean(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load_spec's own warnings are checked next
        spec = load_spec(path)
    assert lint_spec(spec) == []
