"""Every registered data source, preprocessing step and augmentation step (and tuner) is in
the spec's schema and resolves to its implementation; every preprocessing and augmentation
step builds its layer, behaves as documented and round-trips through a `.keras` file.

Parametrized over the registries, so a new kind is tested as soon as it is registered."""

from __future__ import annotations

import numpy as np
import pytest

from kspec import registry
from kspec.spec import json_schema
from kspec.validation import load_spec

registry.load_builtins()
KINDS = {"sources": registry.SOURCES, "preprocessing": registry.PREPROCESSING,
         "augmentations": registry.AUGMENTATIONS, "tuners": registry.TUNERS}
ENTRIES = [(kind, e.name) for kind, reg in KINDS.items() for e in reg.entries()]
X = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")


def _spec(**data) -> dict:
    return {"model": {"inputs": [{"name": "image", "shape": [8, 8, 1]}],
                      "layers": [{"type": "flatten"}, {"type": "dense", "units": 2}]},
            "training": {"loss": "mse"}, "data": data}


@pytest.mark.parametrize("kind,name", ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_each_kind_is_in_the_schema_and_resolves(kind, name):
    entry = KINDS[kind].get(name)
    assert entry.description and callable(entry.implementation())
    schema = json_schema()
    assert entry.config.__name__ in schema["$defs"], "the union is built from the registry"
    example = dict(entry.config.example)
    if kind == "sources":
        spec = load_spec(_spec(source=example))
        assert spec.data.source.type == name
    elif kind == "tuners":
        spec = load_spec({**_spec(), "search": {"tuner": example}})
        assert spec.search.tuner.type == name
    else:
        spec = load_spec(_spec(**{kind.replace("augmentations", "augmentation"): [example]}))
        steps = spec.data.preprocessing if kind == "preprocessing" else spec.data.augmentation
        assert steps[0].type == name


def _roundtrip(layer, tmp_path):
    import keras

    import kspec.data.keras_layers  # noqa: F401 - registers kspec's layers for safe-mode loading

    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, layer(inp))
    path = tmp_path / "m.keras"
    model.save(path)
    return model, keras.saving.load_model(path, safe_mode=True)


@pytest.mark.parametrize("name", registry.AUGMENTATIONS.names())
def test_each_augmentation_is_random_in_training_and_inert_at_inference(name, tmp_path):
    entry = registry.AUGMENTATIONS.get(name)
    step = entry.config.model_validate(entry.config.example)
    layer, shape = entry.implementation()(step, seed=3, name=f"aug_{name}", shape=(8, 8, 1),
                                          where="data.augmentation[0]")
    model, loaded = _roundtrip(layer, tmp_path)
    trained = np.asarray(layer(X, training=True))
    inferred = np.asarray(model(X, training=False))
    assert trained.shape[1:] == inferred.shape[1:] == tuple(shape)
    if shape == (8, 8, 1):
        np.testing.assert_array_equal(inferred, X)  # inert at inference
    assert not np.allclose(trained, inferred), "random in training"
    np.testing.assert_allclose(np.asarray(loaded(X, training=False)), inferred, rtol=1e-6)


@pytest.mark.parametrize("name", registry.PREPROCESSING.names())
def test_each_preprocessing_step_fits_on_train_and_its_layer_computes_the_fit(name, tmp_path):
    entry = registry.PREPROCESSING.get(name)
    step = entry.config.model_validate(entry.config.example)
    fitted = entry.implementation()(step, X, "data.preprocessing[0]")
    model, loaded = _roundtrip(fitted.make_layer(f"pre_{name}"), tmp_path)
    expected = fitted.forward(X)
    np.testing.assert_allclose(np.asarray(model(X)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(loaded(X)), expected, rtol=1e-4, atol=1e-4)
    if fitted.out_shape is None:  # shape-keeping steps undo exactly (PCA drops directions)
        np.testing.assert_allclose(fitted.inverse(expected), X, rtol=1e-3, atol=1e-3)
