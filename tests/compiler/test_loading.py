"""The one safe model loader: every documented route loads every kspec class in a fresh
process, and every broken model file gets one line naming it and what is wrong."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kspec  # noqa: E402
from kspec.compiler.loading import (  # noqa: E402
    ModelFileError,
    load_model,
    load_savedmodel,
    savedmodel_layer,
)

ROOT = Path(__file__).resolve().parents[2]
N = 12


def _every_class_model():
    """A model holding every Keras class kspec registers (fitted preprocessing, every
    augmentation, a fixed kernel, maxout; content, style and label-columns losses; the
    fairness and per-class metrics; uncertainty weighting) plus the Keras layers kspec
    builds specs from (categorical lookup, PReLU)."""
    from kspec.components import (
        BalancedAccuracy,
        ContentLoss,
        FixedKernel,
        LabelColumnsLoss,
        LabelColumnsMetric,
        Maxout,
        PerClassAccuracy,
        StatisticalParity,
        StyleLoss,
        SubgroupAccuracy,
        SubgroupAccuracyGap,
        with_uncertainty_weighting,
    )
    from kspec.data import keras_layers as L

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    image = keras.Input((8, 8, 1), name="image")
    color = keras.Input((1,), dtype="string", name="color")
    rescale = L.Rescale(stat_shape=[], name="rescale")
    rescale.set_statistics(offset=2.0, scale=0.5)
    whiten = L.Whitening(features=64, components=64, target_shape=[8, 8, 1], name="whiten")
    whiten.set_statistics(rng.normal(size=64), np.eye(64) * 0.5)
    h = whiten(rescale(image))
    for layer in (L.LaplacianNoise(0.1), L.RandomBrightnessShift(0.1),
                  L.RandomContrastScale(0.1), L.RandomFlip("horizontal"),
                  L.RandomRotation(0.1), L.RandomTranslation(0.1, 0.1), L.RandomZoom(0.1),
                  L.RandomCrop(6, 6)):
        h = layer(h)
    maps = keras.layers.Conv2D(2, 3, padding="same", kernel_initializer=FixedKernel("sobel_x"),
                               name="maps")(h)
    style = keras.layers.Conv2D(2, 1, name="style")(h)
    flat = Maxout(pieces=2)(keras.layers.Dense(8)(keras.layers.Flatten()(h)))
    flat = keras.layers.PReLU()(flat)
    ids = keras.layers.StringLookup(vocabulary=["red", "green", "blue"])(color)
    emb = keras.layers.Flatten()(keras.layers.Embedding(4, 2)(ids))
    trunk = keras.layers.Concatenate()([flat, emb])
    flag = keras.layers.Dense(1, activation="sigmoid", name="flag")(trunk)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(trunk)
    inner = keras.Model({"image": image, "color": color},
                        {"maps": maps, "style": style, "flag": flag, "kind": kind},
                        name="every_class")
    model = with_uncertainty_weighting(inner, {
        "maps": ContentLoss(), "style": StyleLoss(),
        "flag": LabelColumnsLoss(keras.losses.BinaryCrossentropy()),
        "kind": keras.losses.SparseCategoricalCrossentropy()})
    model.compile(optimizer="adam", metrics={
        "flag": [SubgroupAccuracy(group=1), SubgroupAccuracyGap(), StatisticalParity(),
                 LabelColumnsMetric(keras.metrics.BinaryAccuracy())],
        "kind": [PerClassAccuracy(class_id=1), BalancedAccuracy(num_classes=3)]})
    x = {"image": rng.uniform(0, 16, size=(N, 8, 8, 1)).astype("float32"),
         "color": np.array([["red"], ["blue"], ["green"], ["pink"]] * (N // 4))}
    y = {"maps": rng.normal(size=(N, 6, 6, 2)).astype("float32"),
         "style": rng.normal(size=(N, 6, 6, 2)).astype("float32"),
         "flag": np.stack([np.arange(N) % 2, np.arange(N) // 6], 1).astype("float32"),
         "kind": (np.arange(N) % 3).astype("int32")}
    model.run_eagerly = True
    model.train_on_batch(x, y)
    return model, x, y


def _registered_names(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["registered_name"]} if isinstance(node.get("registered_name"), str) else set()
        return found.union(*(_registered_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_registered_names(v) for v in node))
    return set()


@pytest.fixture(scope="module")
def every_class(tmp_path_factory):
    """The model saved as .keras, with its predictions and evaluation on a batch."""
    folder = tmp_path_factory.mktemp("every_class")
    model, x, y = _every_class_model()
    model.save(folder / "model.keras")
    np.savez(folder / "data.npz", **{f"x_{k}": v for k, v in x.items()},
             **{f"y_{k}": v for k, v in y.items()})
    preds = {k: np.asarray(v) for k, v in model(x).items()}
    np.savez(folder / "preds.npz", **preds)
    (folder / "task_weights.json").write_text(json.dumps(model.task_weights()))
    (folder / "eval.json").write_text(json.dumps(model.test_on_batch(x, y, return_dict=True)))
    return folder


# Classes that a saved config never names: their container builds them (its weights are
# saved, and the routes below check the container's learned task weights come back).
BUILT_INSIDE = {"kspec>UncertaintyWeighting": "kspec>UncertaintyWeightedModel"}


def test_the_model_holds_every_registered_kspec_class(every_class):
    """New kspec classes must join this model, so the loading routes below stay proven."""
    with zipfile.ZipFile(every_class / "model.keras") as z:
        names = _registered_names(json.loads(z.read("config.json")))
    names |= {inner for inner, outer in BUILT_INSIDE.items() if outer in names}
    assert set(kspec.custom_objects()) <= names, set(kspec.custom_objects()) - names


# Each documented route, in a new interpreter that has imported nothing of kspec's classes.
ROUTES = {
    "kspec.load_model": "import kspec\nmodel = kspec.load_model(FILE)",
    "keras with kspec.custom_objects()": textwrap.dedent("""
        import keras, kspec
        try:  # without kspec's classes plain Keras cannot know them: the reason for the route
            keras.saving.load_model(FILE, safe_mode=True)
            raise SystemExit("loaded without custom_objects")
        except TypeError as e:
            assert "kspec>" in str(e), e
        model = keras.saving.load_model(FILE, custom_objects=kspec.custom_objects(),
                                        safe_mode=True)
    """),
}
CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    folder = sys.argv[1]
    with np.load(folder + "/data.npz") as z:
        x = {k[2:]: z[k] for k in z.files if k.startswith("x_")}
        y = {k[2:]: z[k] for k in z.files if k.startswith("y_")}
    with np.load(folder + "/preds.npz") as z:
        for key, want in z.items():
            np.testing.assert_allclose(np.asarray(model(x)[key]), want, rtol=1e-5, atol=1e-6)
    want = json.load(open(folder + "/task_weights.json"))
    assert model.task_weights() == want, (model.task_weights(), want)
    model.run_eagerly = True
    got = model.test_on_batch(x, y, return_dict=True)
    want = json.load(open(folder + "/eval.json"))
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-6, err_msg=key)
    print("loaded", type(model).__name__, len(got), "metrics")
""")


@pytest.mark.slow
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_documented_route_loads_in_a_fresh_process(every_class, route):
    script = ROUTES[route].replace("FILE", repr(str(every_class / "model.keras"))) + CHECK
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script, str(every_class)], cwd=every_class,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded UncertaintyWeightedModel" in done.stdout


@pytest.mark.parametrize("doc", ["README.md", "docs/spec.md", "docs/export.md",
                                 "docs/custom-components.md"])
def test_the_docs_show_the_tested_routes_and_no_other(doc):
    text = " ".join((ROOT / doc).read_text().split())
    assert "kspec.load_model(" in text
    assert re.search(r"keras\.saving\.load_model\([^)]*custom_objects=kspec\.custom_objects\(\), "
                     r"safe_mode=True\)", text)
    # Plain Keras without kspec's classes fails on any model with preprocessing.
    plain = re.findall(r"keras\.saving\.load_model\((?:(?!custom_objects)[^)])*safe_mode=True\)",
                       text)
    assert not plain, plain


def test_load_model_takes_a_run_directory(every_class):
    model = load_model(every_class, compile=False)
    assert type(model).__name__ == "UncertaintyWeightedModel"


# -- broken .keras files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_keras(tmp_path_factory):
    """A small valid .keras file with a kspec class in it."""
    from kspec.data.keras_layers import Rescale

    inp = keras.Input((3,), name="x")
    out = keras.layers.Dense(2, name="out")(Rescale(stat_shape=[], name="rescale")(inp))
    path = tmp_path_factory.mktemp("keras") / "good.keras"
    keras.Model(inp, out).save(path)
    return path


def _rewrite(src: Path, dst: Path, drop=(), config=None, weights=None) -> Path:
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            if name in drop:
                continue
            if name == "config.json" and config is not None:
                data = config(data)
            if name == "model.weights.h5" and weights is not None:
                data = weights(data)
            new.writestr(name, data)
    return dst


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _lambda_model(path: Path) -> Path:
    inp = keras.Input((3,))
    keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp)).save(path)
    return path


BROKEN_KERAS = {
    "empty": (lambda good, p: _write(p, b""), "the file is empty (0 bytes)"),
    "garbage": (lambda good, p: _write(p, b"not a model"),
                "not a .keras model (a .keras file is a zip archive"),
    "truncated": (lambda good, p: _write(p, good.read_bytes()[:600]), "truncated or corrupt"),
    "hdf5": (lambda good, p: _write(p, b"\x89HDF\r\n\x1a\n" + b"\0" * 64),
             "an HDF5 file (Keras's legacy .h5 format)"),
    "no config": (lambda good, p: _rewrite(good, p, drop=("config.json",)),
                  "a zip archive without config.json"),
    "config not JSON": (lambda good, p: _rewrite(good, p, config=lambda d: d[:40]),
                        "config.json is not valid JSON"),
    "no weights": (lambda good, p: _rewrite(good, p, drop=("model.weights.h5",)),
                   "holds no weights"),
    "truncated weights": (lambda good, p: _rewrite(good, p, weights=lambda d: d[:900]),
                          "the weights (model.weights.h5) are truncated or corrupt"),
    "a newer kspec class": (
        lambda good, p: _rewrite(good, p, config=lambda d: d.replace(b"Rescale", b"Rescale9")),
        "unknown class 'Rescale9' (registered as 'kspec>Rescale9'): a kspec class this "
        "version of kspec does not have"),
    "a user class not imported": (
        lambda good, p: _rewrite(good, p, config=lambda d: d.replace(b"kspec>Rescale",
                                                                     b"mine>Rescale")),
        "unknown class 'Rescale' (registered as 'mine>Rescale'): a class of your own: import "
        "the module that registers it"),
    "code (a Lambda layer)": (lambda good, p: _lambda_model(p),
                              "contains Python code (a Lambda layer or a lambda function)"),
}


@pytest.mark.parametrize("case", list(BROKEN_KERAS))
def test_broken_keras_files_get_one_line_naming_the_file(good_keras, tmp_path, case):
    make, expected = BROKEN_KERAS[case]
    path = make(good_keras, tmp_path / "model.keras")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "\n" not in message
    assert isinstance(info.value, kspec.DataError)  # the CLI's "error: ..." with status 2


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(ModelFileError, match=r"nope\.keras: file not found$"):
        load_model(tmp_path / "nope.keras")
    with pytest.raises(ModelFileError, match="a folder without model.keras"):
        load_model(tmp_path)


# -- broken SavedModels ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_savedmodel(tmp_path_factory):
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.arange(256, dtype="float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x * self.w}

    module = Scale()
    path = tmp_path_factory.mktemp("sm") / "good"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def _copy_broken(good: Path, dst: Path, how: str) -> Path:
    import shutil

    shutil.copytree(good, dst)
    pb, variables = dst / "saved_model.pb", dst / "variables"
    if how == "garbage pb":
        pb.write_text("garbage")
    elif how == "truncated pb":
        pb.write_bytes(pb.read_bytes()[:300])
    elif how == "empty pb":
        pb.write_bytes(b"")
    elif how == "no variables":
        shutil.rmtree(variables)
    elif how == "no index":
        (variables / "variables.index").unlink()
    elif how == "truncated data":
        (data,) = variables.glob("variables.data-*")
        data.write_bytes(data.read_bytes()[:100])
    return dst


BROKEN_SAVEDMODELS = {
    "garbage pb": "saved_model.pb: corrupt or truncated (not a SavedModel protocol buffer)",
    "truncated pb": "saved_model.pb: corrupt or truncated",
    "empty pb": "saved_model.pb: the file is empty (0 bytes)",
    "no variables": "the SavedModel has no variables/ folder",
    "no index": "variables: variables.index is missing",
    "truncated data": "variables: the weights are truncated or corrupt",
}


@pytest.mark.parametrize("how", list(BROKEN_SAVEDMODELS))
def test_broken_savedmodels_get_one_line_naming_the_file(good_savedmodel, tmp_path, how):
    path = _copy_broken(good_savedmodel, tmp_path / "model", how)
    for load in (load_savedmodel, lambda p: savedmodel_layer(p, call_endpoint="serving_default")):
        with pytest.raises(ModelFileError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(str(path)) and BROKEN_SAVEDMODELS[how] in message, message
        assert "\n" not in message


def test_a_broken_transfer_base_names_the_spec_path_and_the_file(good_keras, good_savedmodel,
                                                                 tmp_path):
    from kspec.compiler.model import build_model
    from kspec.validation import load_spec

    broken_keras = tmp_path / "base.keras"
    broken_keras.write_bytes(good_keras.read_bytes()[:500])
    broken_sm = _copy_broken(good_savedmodel, tmp_path / "base_sm", "no variables")
    for base, expected in ((broken_keras, "truncated or corrupt"),
                           (broken_sm, "has no variables/ folder")):
        spec = load_spec({"name": "t", "model": {
            "inputs": [{"name": "x", "shape": [3]}],
            "base": {"path": str(base)},
            "layers": [{"type": "dense", "units": 2}]},
            "training": {"optimizer": "adam", "loss": "mse"}})
        with pytest.raises(kspec.SpecError) as info:
            build_model(spec)
        assert info.value.path == "model.base"
        assert f"cannot load the base model: {base}" in str(info.value)
        assert expected in str(info.value)
