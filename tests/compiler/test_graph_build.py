"""Graph models build, train and round-trip; shape problems name the blocks."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import kspec
from kspec.errors import SpecError
from tests.helpers.graphs import graph_spec, valid


def _graph_data(n=160, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    meta = rng.normal(size=(n, 3)).astype("float32")
    label = (image.mean(axis=(1, 2, 3)) > 0).astype("int64") + (meta[:, 0] > 0.5)
    value = meta.sum(axis=1, keepdims=True).astype("float32")
    return {"image": image, "meta": meta}, {"label": label, "value": value}


def test_multi_input_graph_builds_with_repeated_residual_blocks():
    model = kspec.build(kspec.load_spec(valid(graph_spec())))
    names = [layer.name for layer in model.layers]
    assert model.output_names == ["label", "value"]
    assert [t.name for t in model.inputs] == ["image", "meta"]
    # repeat: 2 makes two residual additions with their own convolutions
    expected = {"body_0_residual", "body_1_residual", "body_0_conv2d_0", "body_1_conv2d_0"}
    assert expected <= set(names)
    w0 = model.get_layer("body_0_conv2d_0").kernel
    w1 = model.get_layer("body_1_conv2d_0").kernel
    assert w0 is not w1 and not np.allclose(np.asarray(w0), np.asarray(w1))


def test_residual_graph_trains_and_round_trips(tmp_path):
    x, y = _graph_data()
    spec = valid(graph_spec())
    spec["training"].update(epochs=3, batch_size=32, verbose=0,
                            optimizer={"type": "adam", "learning_rate": 0.01})
    test = ({k: v[:40] for k, v in x.items()}, {k: v[:40] for k, v in y.items()})
    run = kspec.fit(spec, data={"train": (x, y), "test": test}, out=tmp_path)
    assert run.history["loss"][-1] < run.history["loss"][0]
    import keras

    loaded = keras.saving.load_model(run.run_dir / "model.keras", safe_mode=True)
    batch = {k: v[:5] for k, v in x.items()}
    for a, b in zip(run.model.predict(batch, verbose=0), loaded.predict(batch, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_merging_different_shapes_names_both_blocks():
    spec = valid(graph_spec())
    spec["model"]["blocks"][3]["layers"][0]["units"] = 5
    spec["model"]["blocks"][4]["merge"] = "add"
    with pytest.raises(SpecError) as info:
        kspec.build(kspec.load_spec(spec))
    msg = str(info.value)
    assert info.value.path == "model.blocks[4].merge"
    assert "block 'trunk' cannot add" in msg and "pool (4,)" in msg and "tab (5,)" in msg


def test_concatenating_incompatible_shapes_is_refused():
    spec = valid(graph_spec())
    spec["model"]["blocks"][4]["inputs"] = ["body", "tab", "pool"]
    with pytest.raises(SpecError, match=r"model\.blocks\[4\]\.merge: block 'trunk' cannot "
                       r"concatenate body \(8, 8, 4\), tab \(4,\), pool \(4,\)"):
        kspec.build(kspec.load_spec(spec))


def test_residual_shape_change_needs_projection():
    spec = valid(graph_spec())
    spec["model"]["definitions"]["res"]["layers"][0]["strides"] = 2
    with pytest.raises(SpecError) as info:
        kspec.build(kspec.load_spec(spec))
    assert info.value.path == "model.definitions.res.residual"
    assert "block 'body'" in str(info.value) and "(8, 8, 4)" in str(info.value)
    spec["model"]["definitions"]["res"]["residual"] = "project"
    model = kspec.build(kspec.load_spec(spec))
    assert model.get_layer("body_0_projection").strides == (2, 2)
    assert tuple(model.get_layer("body_1_residual").output.shape[1:]) == (2, 2, 4)


def test_layer_errors_in_a_definition_name_the_block():
    spec = {"model": {
        "inputs": [{"name": "meta", "shape": [3]}],
        "definitions": {"res": {"layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3}]}},
        "blocks": [{"name": "body", "inputs": "meta", "use": "res", "repeat": 2},
                   {"name": "out", "inputs": "body", "layers": [{"type": "dense", "units": 1}]}],
    }, "training": {"loss": "mse"}}
    with pytest.raises(SpecError) as info:
        kspec.build(kspec.load_spec(spec))
    assert info.value.path == "model.definitions.res.layers[0]"
    assert "in block 'body' (repetition 1)" in str(info.value)
    assert "conv2d layer to an input of shape (None, 3)" in str(info.value)


def test_stack_specs_still_build(tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["model"]["inputs"][0]["shape"] = [4]
    model = kspec.build(kspec.load_spec(spec))
    assert model.output_names == ["output"] and len(model.layers) == 3
