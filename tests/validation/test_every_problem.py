"""`kspec validate` names every problem at once, one line each, with the closest name."""

from __future__ import annotations

import pytest

import kspec
from kspec.cli import main
from kspec.errors import SpecError, edit_distance, suggest

# Eight mistakes: four that hid behind others or went unreported, four ordinary ones.
EIGHT = """\
kspec: 1
name: eight
data:
  source: {type: bundled, name: digit}                               # 1 unknown dataset
model:
  inputs: [{name: image, shape: [8, 8, 1]}]
  layers:
    - {type: flatten}
    - {type: dense, units: 64, kernel_initializer: he_normel}        # 2 initializer
    - {type: dense, unitz: 64, activation: rleu}                     # 3 key, 4 activation
    - {type: dropout, rate: 1.5}                                     # 5 rate
    - {type: dense, units: 10, activation: softmax}
training:
  optimizer: {type: adma, learning_rate: 0.002}                      # 6 optimizer
  loss: sparse_categorical_crossentropy
  metrics: [acuracy]                                                 # 7 metric
  epochs: -1                                                         # 8 epochs
"""

EXPECTED = {
    "data.source.name": "unknown dataset 'digit'; did you mean 'digits'?",
    "model.layers[1].kernel_initializer": "did you mean 'he_normal'?",
    "model.layers[2].unitz": "unknown key 'unitz'; did you mean 'units'?",
    "model.layers[2].activation": "unknown activation 'rleu'; did you mean 'relu'?",
    "model.layers[3].rate": "should be less than 1",
    "training.optimizer.type": "unknown optimizer 'adma'; did you mean 'adam'?",
    "training.metrics[0]": "unknown metric 'acuracy'; did you mean 'accuracy'?",
    "training.epochs": "should be greater than 0",
}


def test_all_eight_mistakes_are_named_once_each(tmp_path, capsys):
    with pytest.raises(SpecError) as info:
        kspec.load_spec(EIGHT)
    found = {e.path: str(e) for e in info.value.errors}
    assert set(found) == set(EXPECTED), sorted(found)
    for path, words in EXPECTED.items():
        assert words in found[path], found[path]

    spec = tmp_path / "eight.yaml"
    spec.write_text(EIGHT)
    assert main(["validate", str(spec)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == f"{spec}: 8 problems in the spec:"
    assert len(lines) == 9 and all(line.startswith("  - ") for line in lines[1:])


def test_an_unknown_key_does_not_hide_the_other_problems_of_its_mapping(tiny_spec):
    tiny_spec["model"]["layers"][0].update(unitz=3, activation="rleu", use_bias="maybe")
    tiny_spec["training"]["callbacks"] = {"early_stoping": {}, "tensorboard": "maybe"}
    with pytest.raises(SpecError) as info:
        kspec.load_spec(tiny_spec)
    assert {e.path for e in info.value.errors} == {
        "model.layers[0].unitz", "model.layers[0].activation", "model.layers[0].use_bias",
        "training.callbacks.early_stoping", "training.callbacks.tensorboard"}


def test_a_typo_in_a_required_key_is_one_problem(tiny_spec):
    del tiny_spec["model"]["layers"][0]["units"]
    tiny_spec["model"]["layers"][0]["untis"] = 8
    with pytest.raises(SpecError) as info:
        kspec.load_spec(tiny_spec)
    assert [e.path for e in info.value.errors] == ["model.layers[0].untis"]
    assert "did you mean 'units'" in str(info.value)


@pytest.mark.parametrize("key, value, path, words", [
    ("metrics", ["acuracy"], "training.metrics[0]", "unknown metric 'acuracy'"),
    ("metrics", {"output": ["acuracy"]}, "training.metrics.output[0]", "unknown metric"),
    ("loss", "msee", "training.loss", "unknown loss 'msee'"),
    ("loss", {"output": "msee"}, "training.loss.output", "unknown loss 'msee'"),
])
def test_a_list_or_mapping_union_reports_only_the_form_that_was_written(tiny_spec, key, value,
                                                                        path, words):
    tiny_spec["training"][key] = value
    with pytest.raises(SpecError) as info:
        kspec.load_spec(tiny_spec)
    assert [e.path for e in info.value.errors] == [path]
    assert words in str(info.value) and "dictionary" not in str(info.value)


def test_a_wrong_type_for_a_union_still_names_every_form(tiny_spec):
    tiny_spec["training"]["metrics"] = 5
    with pytest.raises(SpecError) as info:
        kspec.load_spec(tiny_spec)
    message = str(info.value)
    assert "valid list" in message and "valid dictionary" in message


@pytest.mark.parametrize("typo, names, expected", [
    ("adma", ["adam", "adamax", "adamw", "nadam"], "adam"),      # a swapped pair
    ("adm", ["adamax", "adam", "adamw"], "adam"),                # a dropped letter
    ("rleu", ["elu", "relu", "selu", "relu6"], "relu"),
    ("acuracy", ["accuracy", "categorical_accuracy"], "accuracy"),
    ("sgdd", ["sgd", "adadelta"], "sgd"),
    ("ReLU", ["relu", "elu"], "relu"),                           # case only
    ("mean_squared_eror", ["mean_squared_error", "mean_absolute_error"], "mean_squared_error"),
    ("zzzzzz", ["relu", "tanh"], None),
    ("x", ["y", "z"], None),
])
def test_suggestions_rank_the_closest_name_first(typo, names, expected):
    assert suggest(typo, names) == expected


def test_edit_distance_counts_a_swap_as_one_edit():
    assert edit_distance("adma", "adam") == 1
    assert edit_distance("adma", "adamax") == 2
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0


def test_kspec_validate_warns_about_missing_data_files(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(EIGHT.replace("{type: bundled, name: digit}",
                                  "{type: npz, path: data/x.npz, x: x, y: y}")
                    .replace("he_normel", "he_normal").replace("unitz", "units")
                    .replace("rleu", "relu").replace("1.5", "0.5").replace("adma", "adam")
                    .replace("acuracy", "accuracy").replace("-1", "1"))
    assert main(["validate", str(spec)]) == 0
    err = capsys.readouterr().err
    assert (f"{spec}: warning: data.source.path: file not found: {tmp_path}/data/x.npz"
            in err.splitlines())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.npz").write_bytes(b"")
    assert main(["validate", str(spec)]) == 0
    assert "not found" not in capsys.readouterr().err
