"""Everything that validates builds, or fails with a SpecError at its path, before memory
runs out: sizes and seeds are bounded, names are ones Keras accepts, parameters are counted
before any weight exists (model.max_params)."""

from __future__ import annotations

import copy

import pytest

import kspec
from kspec.compiler.model import build_model
from kspec.compiler.size import layer_params
from kspec.errors import SpecError
from kspec.spec.model import Conv2D, Dense, Embedding
from tests.helpers.graphs import graph_spec, valid


@pytest.fixture
def shaped(tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["model"]["inputs"][0]["shape"] = [4]
    return spec


def _error(spec) -> SpecError:
    with pytest.raises(SpecError) as info:
        build_model(spec)
    return info.value


def test_a_layer_too_big_for_the_parameter_budget_is_refused_before_allocation(shaped):
    shaped["model"]["layers"][0]["units"] = 2**31 - 1  # validates; Keras would need 68 GB
    error = _error(shaped)
    assert error.path == "model.layers[0]"
    assert "10,737,418,235 parameters, more than model.max_params (100,000,000)" in str(error)


def test_the_budget_counts_the_whole_model_and_can_be_raised(shaped):
    shaped["model"]["max_params"] = 60  # 4*8+8 = 40, then 8*3+3 = 27
    error = _error(shaped)
    assert error.path == "model.layers[1]"
    assert "27 parameters and takes the model to 67, more than model.max_params (60)" \
        in str(error)
    shaped["model"]["max_params"] = 67
    assert build_model(shaped).count_params() == 67


@pytest.mark.parametrize("layer, shape, expected", [
    (Dense(type="dense", units=10), (None, 64), 650),
    (Dense(type="dense", units=10, use_bias=False), (None, 64), 640),
    (Conv2D(type="conv2d", filters=8, kernel_size=3), (None, 28, 28, 3), 3 * 3 * 3 * 8 + 8),
    (Conv2D(type="conv2d", filters=8, kernel_size=[1, 5]), (None, 28, 28, 3), 5 * 3 * 8 + 8),
    (Embedding(type="embedding", input_dim=1000, output_dim=16), (None, 20), 16000),
])
def test_parameter_counts_match_keras(layer, shape, expected):
    import keras

    assert layer_params(layer, shape) == expected
    kind = {"dense": keras.layers.Dense(10, use_bias=layer.type != "dense" or layer.use_bias),
            "conv2d": keras.layers.Conv2D(8, getattr(layer, "kernel_size", 1)),
            "embedding": keras.layers.Embedding(1000, 16)}[layer.type]
    kind.build(shape)
    assert kind.count_params() == expected


def test_graph_blocks_and_repeats_are_counted_too():
    spec = valid(graph_spec())
    spec["model"]["max_params"] = 50
    error = _error(spec)
    assert error.path.startswith("model.") and "model.max_params (50)" in str(error)


@pytest.mark.parametrize("key, value, path, words", [
    ("model.layers[0].units", 2**31, "model.layers[0].units", "less than or equal to 2147483647"),
    ("model.layers[0].units", 10**400, "model.layers[0].units", "integer of about 401 digits"),
    ("seed", 2**32, "seed", "less than or equal to 4294967295"),
    ("model.inputs[0].name", "a/b", "model.inputs[0].name", "not a valid name"),
    ("model.inputs[0].name", "my input", "model.inputs[0].name", "no '/' or spaces"),
    ("model.layers[0].name", "_hidden", "model.layers[0].name", "not a valid name"),
    ("model.output_name", "out/put", "model.output_name", "not a valid name"),
    ("model.layers[0].type", ["dense"], "model.layers[0].type", "a type is a name"),
    ("model.layers[0].type", {"a": 1}, "model.layers[0].type", "a type is a name"),
    ("name", "x" * 101, "name", "1 to 100 letters"),
])
def test_values_keras_would_refuse_are_refused_when_validating(shaped, key, value, path, words):
    with pytest.raises(SpecError) as info:
        kspec.load_spec(shaped, {key: value})
    assert [e.path for e in info.value.errors] == [path]
    assert words in str(info.value)


def test_the_largest_seed_builds(shaped):
    shaped["seed"] = 2**32 - 1
    assert build_model(shaped).count_params() == 67
    shaped["ensemble"] = {"members": 2, "seeds": [0, 2**32]}
    with pytest.raises(SpecError, match=r"ensemble.seeds\[1\]"):
        kspec.load_spec(shaped)


def test_repeat_and_layer_count_are_bounded():
    spec = valid(graph_spec())
    block = next(i for i, b in enumerate(spec["model"]["blocks"]) if b.get("use"))
    with pytest.raises(SpecError, match=rf"model.blocks\[{block}\].repeat: should be less "
                       "than or equal to 1000"):
        kspec.load_spec(spec, {f"model.blocks[{block}].repeat": 10**9})
    with pytest.raises(SpecError, match=r"model.blocks: the model would have [\d,]+ layers "
                       r"\(repetitions included\); kspec builds at most 2,000"):
        kspec.load_spec(spec, {f"model.blocks[{block}].repeat": 1000})


def test_errors_of_any_type_come_back_at_the_layer(shaped):
    """Keras and TensorFlow raise more than ValueError (UnimplementedError, RuntimeError...)."""
    from kspec import registry

    registry.load_builtins()

    def broken(units: int = 1, name: str | None = None):
        raise RuntimeError("the layer broke")

    registry.LAYERS.register("broken_layer", broken)
    try:
        shaped["model"]["layers"].insert(0, {"type": "broken_layer", "units": 2})
        error = _error(shaped)
    finally:
        registry.LAYERS.unregister("broken_layer")
    assert error.path == "model.layers[0]"
    assert "cannot apply broken_layer layer" in str(error) and "the layer broke" in str(error)
