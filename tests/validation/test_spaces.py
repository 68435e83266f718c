"""Search-space syntax and validation: plain data, no TensorFlow."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import kspec
from kspec.errors import SpecError
from kspec.spec.spaces import parse_spaces, strip_space_parts
from kspec.validation.spaces import SearchSpaceNotice, diff_paths, load_search

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "space_test",
    "model": {
        "inputs": [{"name": "x", "shape": [4]}],
        "layers": [
            {"type": "dense", "units": {"$choice": [8, 16]},
             "activation": {"$choice": ["relu", "tanh"]}},
            {"type": "dropout", "rate": {"$float": {"min": 0.0, "max": 0.5}}},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
    },
    "training": {
        "loss": "binary_crossentropy",
        "optimizer": {"$choice": [
            {"type": "adam", "learning_rate": {"$float": {"min": 1e-4, "max": 1e-2,
                                                          "sampling": "log"}}},
            {"type": "sgd", "momentum": {"$float": {"min": 0.5, "max": 0.9}},
             "nesterov": {"$bool": {}}},
        ]},
        "batch_size": {"$int": {"min": 16, "max": 64, "step": 16, "default": 32}},
    },
}


def with_value(path: str, value) -> dict:
    raw = copy.deepcopy(BASE)
    return kspec.spec.apply_overrides(raw, {path: value})


def test_names_are_spec_paths_and_options_keep_their_place():
    _, spaces = parse_spaces(copy.deepcopy(BASE))
    assert [s.name for s in spaces] == [
        "model.layers[0].units", "model.layers[0].activation", "model.layers[1].rate",
        "training.optimizer", "training.optimizer.$choice[0].learning_rate",
        "training.optimizer.$choice[1].momentum", "training.optimizer.$choice[1].nesterov",
        "training.batch_size",
    ]
    momentum = spaces[5]
    assert momentum.resolved_path == ("training", "optimizer", "momentum")
    assert [(p.name, i) for p, i in momentum.parents] == [("training.optimizer", 1)]
    assert spaces[3].conditional and not spaces[0].conditional


def test_load_spec_resolves_defaults_with_a_notice():
    with pytest.warns(SearchSpaceNotice, match="8 search space"):
        spec = kspec.load_spec(copy.deepcopy(BASE))
    dense = spec.model.layers[0]
    assert (dense.units, dense.activation) == (8, "relu")
    assert spec.model.layers[1].rate == 0.0
    assert spec.training.optimizer == {"type": "adam", "learning_rate": 1e-4}
    assert spec.training.batch_size == 32  # explicit default


def test_a_spec_without_spaces_gives_no_notice():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchSpaceNotice)
        kspec.load_spec(ROOT / "specs" / "quickstart.yaml")


BAD = [
    ("model.layers[0].units", {"$choice": []},
     "model.layers[0].units.$choice", "at least one option"),
    ("model.layers[1].rate", {"$float": {"min": 0.4, "max": 0.1}},
     "model.layers[1].rate.$float.min", "min 0.4 is above max 0.1"),
    ("training.optimizer", {"type": "adam",
                            "learning_rate": {"$float": {"min": 0.0, "max": 0.1,
                                                         "sampling": "log"}}},
     "training.optimizer.learning_rate.$float.min", "log sampling needs a positive range"),
    ("model.layers[0].activation", {"$choice": ["relu", "rleu"]},
     "model.layers[0].activation.$choice[1]", "unknown activation 'rleu'; did you mean 'relu'"),
    ("model.layers[0].units", {"$choice": [8, -3]},
     "model.layers[0].units.$choice[1]", "greater than 0"),
    ("model.layers[1].rate", {"$float": {"min": 0.0, "max": 1.0}},
     "model.layers[1].rate.$float.max", "less than 1"),
    ("model.layers[0].units", {"$int": {"min": 8, "max": 64, "stride": 8}},
     "model.layers[0].units.$int.stride", "unknown key 'stride'"),
    ("model.layers[0].units", {"$range": [1, 2]},
     "model.layers[0].units.$range", "unknown search space '$range'"),
    ("model.layers[0].units", {"$choice": [8], "default": 8},
     "model.layers[0].units", "exactly one key"),
    ("model.layers[0].units", {"$int": {"min": {"$int": {"min": 1, "max": 2}}, "max": 8}},
     "model.layers[0].units.$int", "bounds of a range cannot be search spaces"),
    ("seed", {"$choice": [1, 2]}, "seed", "not allowed in 'seed'"),
    ("data.splits.validation", {"$choice": [0.1, 0.2]}, "data.splits.validation",
     "not allowed in 'data'"),
    ("training.batch_size", {"$choice": {"values": [16, 32], "default": 64}},
     "training.batch_size.$choice.default", "not one of the values"),
    ("model.layers[0].use_bias", {"$bool": 3}, "model.layers[0].use_bias.$bool",
     "$bool takes {} or {default: true}"),
]


@pytest.mark.parametrize("path,space,where,message", BAD, ids=[b[2] for b in BAD])
def test_bad_spaces_name_the_place(path, space, where, message):
    with pytest.raises(SpecError) as info:
        kspec.load_spec(with_value(path, space))
    paths = [e.path for e in info.value.errors]
    assert where in paths, str(info.value)
    assert message in str(info.value)


def test_a_bad_option_of_a_sub_spec_choice_points_into_the_option():
    raw = with_value("training.optimizer.$choice[1].momentum", 0.9)
    raw["training"]["optimizer"]["$choice"][1]["momentun"] = 0.5
    with pytest.raises(SpecError) as info:
        kspec.load_spec(raw)
    assert info.value.path == "training.optimizer.$choice[1].momentun"
    assert "did you mean 'momentum'" in str(info.value)


def test_int_step_top_value_is_checked_not_just_max():
    # 1, 4, 7: max 8 is never reached, 7 is; units 7 is fine, so no error.
    raw = with_value("model.layers[0].units", {"$int": {"min": 1, "max": 8, "step": 3}})
    _, spaces = parse_spaces(raw)
    assert [v for v, _ in spaces[0].candidates()] == [1, 7]
    log = {"$int": {"min": 2, "max": 100, "step": 3, "sampling": "log"}}
    _, spaces = parse_spaces(with_value("model.layers[0].units", log))
    assert [v for v, _ in spaces[0].candidates()] == [2, 54]


def test_choice_labels_for_kerastuner():
    _, spaces = parse_spaces(copy.deepcopy(BASE))
    assert spaces[0].labels() == [8, 16]
    assert spaces[3].labels() == ["adam", "sgd"]
    mixed = with_value("model.layers[1].rate", {"$choice": [0, 0.25]})
    _, spaces = parse_spaces(mixed)
    assert spaces[2].labels() == [0.0, 0.25]
    _, spaces = parse_spaces(with_value("model.layers[0].units", {"$choice": [8, "8"]}))
    assert spaces[0].labels() == ["8#0", "8#1"]  # 8 and "8" stay apart
    reg = with_value("model.layers[0].kernel_regularizer",
                     {"$choice": [None, {"type": "l2", "l2": 0.01}, {"type": "l2", "l2": 0.1}]})
    _, spaces = parse_spaces(reg)
    labels = next(s for s in spaces if s.name.endswith("kernel_regularizer")).labels()
    assert labels == ["null", "l2#1", "l2#2"]


def test_strip_space_parts():
    assert strip_space_parts(("training", "optimizer", "$choice", 0, "learning_rate")) == (
        "training", "optimizer", "learning_rate")
    assert strip_space_parts(("a", "$choice", "values", 2, "b")) == ("a", "b")


def test_fingerprint_ignores_max_trials_but_not_spaces():
    plan = load_search(copy.deepcopy(BASE))
    more = load_search(copy.deepcopy(BASE), {"search.max_trials": 50})
    wider = load_search(with_value("model.layers[0].units", {"$choice": [8, 16, 32]}))
    assert plan.fingerprint() == more.fingerprint()
    assert plan.fingerprint() != wider.fingerprint()
    changed = diff_paths(plan.identity(), wider.identity())
    assert changed == ["model.layers[0].units.$choice"]


def test_search_section_objective_direction():
    raw = copy.deepcopy(BASE)
    raw["search"] = {"objective": "val_accuracy"}
    assert load_search(raw).search.objective.direction == "max"
    raw["search"] = {"objective": "val_thing"}
    with pytest.raises(SpecError, match="search.objective.*minimized or maximized"):
        kspec.load_spec(raw)
    raw["search"] = {"objective": {"name": "val_thing", "direction": "max"}, "tuner": "grd"}
    with pytest.raises(SpecError, match=r"search.tuner.*did you mean 'grid'"):
        kspec.load_spec(raw)


def test_example_spec_loads_and_keeps_its_spaces():
    path = ROOT / "specs" / "search_mlp.yaml"
    plan = load_search(path)
    assert "training.optimizer.$choice[1].momentum" in [s.name for s in plan.spaces]
    assert plan.search.tuner.type == "bayesian"
    with pytest.warns(SearchSpaceNotice):
        spec = kspec.load_spec(path)
    assert spec.model.layers[1].units == 32
    assert spec.training.optimizer == {"type": "adam", "learning_rate": 2e-3}


def test_validation_never_imports_tensorflow():
    code = ("import sys, warnings; warnings.simplefilter('ignore'); import kspec; "
            "kspec.load_spec('specs/search_mlp.yaml'); "
            "from kspec.validation import load_search; load_search('specs/search_mlp.yaml'); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_tune_refuses_a_spec_without_spaces():
    with pytest.raises(SpecError, match="no search spaces"):
        kspec.tune(ROOT / "specs" / "quickstart.yaml")


def test_tuner_options_go_with_the_tuner_and_legacy_sections_are_folded_in():
    raw = copy.deepcopy(BASE)
    raw["search"] = {"tuner": {"type": "hyperband", "factor": 2}}
    assert load_search(raw).search.tuner.factor == 2
    raw["search"] = {"tuner": "bayesian", "bayesian": {"initial_points": 4},
                     "hyperband": {"factor": 5}}
    tuner = load_search(raw).search.tuner
    assert (tuner.type, tuner.initial_points) == ("bayesian", 4)
    raw["search"] = {"tuner": {"type": "random", "factor": 2}}
    with pytest.raises(SpecError, match=r"search\.tuner\.factor: unknown key 'factor'"):
        kspec.load_spec(raw)
