"""A small graph spec (two inputs, a residual definition, two heads) shared by the spec and
compiler tests."""

from __future__ import annotations

import copy


def graph_spec() -> dict:
    return {
        "name": "g",
        "model": {
            "inputs": [{"name": "image", "shape": [8, 8, 1]}, {"name": "meta", "shape": [3]}],
            "definitions": {"res": {"residual": True, "layers": [
                {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}]}},
            "blocks": [
                {"name": "stem", "inputs": "image", "layers": [
                    {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}]},
                {"name": "body", "inputs": "stem", "use": "res", "repeat": 2},
                {"name": "pool", "inputs": "body", "layers": [{"type": "global_avg_pool"}]},
                {"name": "tab", "inputs": "meta", "layers": [{"type": "dense", "units": 4}]},
                {"name": "trunk", "inputs": ["pool", "tab"], "merge": "concatenate"},
                {"name": "cls", "inputs": "trunk", "layers": [
                    {"type": "dense", "units": 3, "activation": "softmax"}]},
                {"name": "reg", "inputs": "trunk", "layers": [{"type": "dense", "units": 1}]},
            ],
            "outputs": [{"name": "label"}, {"name": "value", "block": "reg"}],
        },
        "training": {"loss": {"label": "sparse_categorical_crossentropy", "value": "mse"}},
    }


def set_path(spec: dict, path: str, value) -> dict:
    """A copy of ``spec`` with the value at a dotted path (``model.blocks.2.inputs``) set."""
    spec = copy.deepcopy(spec)
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = spec
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return spec


def valid(spec: dict) -> dict:
    """The graph spec with its first output taken from the classifier block."""
    spec["model"]["outputs"][0]["block"] = "cls"
    return spec
