"""Training at scale in one process: the spec keys, TF_CONFIG, precision policies, XLA and
the device checks (several logical devices need a fresh process: test_scale_devices.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kspec
from kspec.errors import SpecError, SpecErrors


def _spec(tiny_spec, **training):
    spec = dict(tiny_spec)
    spec["training"] = {**tiny_spec["training"], **training}
    return spec


# -- the spec keys (no TensorFlow) ------------------------------------------------------------
def test_multi_worker_is_refused_at_validation_with_the_reason(tiny_spec):
    with pytest.raises(SpecErrors) as e:
        kspec.load_spec(_spec(tiny_spec, distribution={"strategy": "multi_worker"}))
    text = str(e.value)
    assert "training.distribution.strategy" in text and "keras-team/keras#20585" in text
    assert "mirrored" in text and "--devices" in text


@pytest.mark.parametrize("training, path, words", [
    ({"distribution": {"strategy": "one_device", "devices": ["GPU:0", "GPU:1"]}},
     "training.distribution.devices", "one_device trains on one device"),
    ({"distribution": {"devices": ["GPU:0", "/gpu:0"]}}, "training.distribution.devices",
     "listed twice"),
    ({"distribution": {"devices": ["TPU:0"]}}, "training.distribution.devices[0]",
     "not a device name"),
    ({"distribution": {"devices": []}}, "training.distribution.devices", "empty"),
    ({"precision": "half"}, "training.precision", "mixed_bfloat16"),
    ({"jit_compile": "maybe"}, "training.jit_compile", "auto, true or false"),
])
def test_bad_scale_keys_name_the_key(tiny_spec, training, path, words):
    with pytest.raises(SpecErrors) as e:
        kspec.load_spec(_spec(tiny_spec, **training))
    assert e.value.errors[0].path == path and words in str(e.value)


def test_scale_keys_and_their_defaults(tiny_spec):
    t = kspec.load_spec(tiny_spec).training
    assert (t.precision, t.jit_compile, t.distribution) == ("float32", "auto", None)
    t = kspec.load_spec(_spec(tiny_spec, precision="mixed_bfloat16", jit_compile=True,
                              distribution={"devices": 2})).training
    assert t.distribution.strategy == "mirrored" and t.distribution.devices == 2
    names = kspec.load_spec(_spec(tiny_spec, distribution={
        "devices": ["/gpu:0", "device:GPU:1"]})).training.distribution.device_names()
    assert names == ["GPU:0", "GPU:1"]


# -- TF_CONFIG --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, path, words", [
    ("{not json", "TF_CONFIG", "not JSON"),
    ("[1, 2]", "TF_CONFIG", "JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG.cluster", "missing"),
    ('{"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG.cluster.worker[0]", "host:port"),
    ('{"cluster": {"worker": ["127.0.0.1:2222"]}}', "TF_CONFIG.task", "missing"),
    ('{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "chief", "index": 0}}',
     "TF_CONFIG.task.type", "names no job"),
    ('{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 1}}',
     "TF_CONFIG.task.index", "should be 0 to 0"),
    ('{"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}, '
     '"task": {"type": "worker", "index": 1}}', "TF_CONFIG", "would train alone"),
])
def test_a_bad_or_multi_machine_tf_config_is_refused(text, path, words):
    from kspec.train.scale import check_cluster

    with pytest.raises(SpecError) as e:
        check_cluster({"TF_CONFIG": text})
    assert e.value.path == path and words in str(e.value)


def test_a_one_task_tf_config_or_none_is_fine():
    from kspec.train.scale import check_cluster

    check_cluster({})
    check_cluster({"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:2222"]},
                                            "task": {"type": "worker", "index": 0}})})


def test_fit_checks_tf_config_before_writing_a_run(tiny_spec, tiny_classification, tmp_path,
                                                   monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{oops")
    with pytest.raises(SpecError, match="TF_CONFIG: the environment variable is not JSON"):
        kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path)
    assert not list(tmp_path.iterdir())


# -- precision --------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_run(precision, tiny_spec, tiny_classification, tmp_path):
    import keras

    run = kspec.fit(_spec(tiny_spec, precision=precision), data=tiny_classification,
                    out=tmp_path)
    model = run.model
    assert model.dtype_policy.name == precision
    assert model.get_layer("dense_0").compute_dtype == precision.split("_")[1]
    # The output layer computes in float32 (softmax included), as the Keras guide does.
    assert model.get_layer("output").compute_dtype == "float32"
    assert model.outputs[0].dtype == "float32"
    assert all(np.isfinite(run.history["loss"]))
    # float16 gets loss scaling, bfloat16 (float32's exponent range) does not need it.
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")
    meta = json.loads((run.run_dir / "meta.json").read_text())
    assert meta["compute"]["precision"] == precision and meta["compute"]["xla"] is False
    assert f"compute  {precision} on CPU:0, XLA off, batch 16" in run.summary()
    loaded = kspec.load_model(run.run_dir)
    x = tiny_classification[0][:8]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_float32_transfer_base_follows_the_precision_of_its_new_model(tmp_path, tiny_spec,
                                                                        tiny_classification):
    base = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, name="base")
    spec = _spec(tiny_spec, precision="mixed_bfloat16")
    spec["model"] = {"inputs": [{"name": "features"}],
                     "base": {"path": str(base.run_dir), "cut_at": "dense_0",
                              "trainable": False},
                     "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]}
    run = kspec.fit(spec, data=tiny_classification, out=tmp_path)
    nested = run.model.get_layer("base")
    assert base.model.get_layer("dense_0").compute_dtype == "float32"
    assert nested.get_layer("dense_0").compute_dtype == "bfloat16"
    for got, want in zip(nested.get_layer("dense_0").get_weights(),
                         base.model.get_layer("dense_0").get_weights()):
        np.testing.assert_array_equal(got, want)  # rebuilt under the policy, same weights
    assert np.isfinite(run.history["loss"]).all()


def test_a_device_that_cannot_compute_in_a_dtype_is_a_spec_error():
    from kspec.train.scale import probe_precision

    probe_precision("mixed_bfloat16", ["CPU:0"])  # bfloat16 runs on this CPU
    with pytest.raises(SpecError) as e:  # no CPU convolution kernel for 8-bit integers
        probe_precision("mixed_int8", ["CPU:0"])
    assert e.value.path == "training.precision" and "cannot compute in int8" in str(e.value)


# -- devices ----------------------------------------------------------------------------------
def test_a_missing_device_is_named_before_training(tiny_spec, tiny_classification, tmp_path):
    spec = _spec(tiny_spec, distribution={"strategy": "one_device", "devices": ["GPU:0"]})
    with pytest.raises(SpecError) as e:
        kspec.fit(spec, data=tiny_classification, out=tmp_path)
    assert e.value.path == "training.distribution.devices[0]"
    assert "no device GPU:0" in str(e.value) and not list(tmp_path.iterdir())


def test_too_many_cpu_devices_once_tensorflow_has_started(tiny_spec, tiny_classification,
                                                          tmp_path):
    import tensorflow as tf

    tf.constant(0)  # this process's devices are fixed from now on
    spec = _spec(tiny_spec, distribution={"devices": 3})
    with pytest.raises(SpecError, match="has already started with 1") as e:
        kspec.fit(spec, data=tiny_classification, out=tmp_path)
    assert e.value.path == "training.distribution.devices"


def test_one_device_strategy_trains_and_records_its_device(tiny_spec, tiny_classification,
                                                           tmp_path):
    spec = _spec(tiny_spec, distribution={"strategy": "one_device"})
    run = kspec.fit(spec, data=tiny_classification, out=tmp_path)
    meta = json.loads((run.run_dir / "meta.json").read_text())["compute"]
    assert (meta["strategy"], meta["devices"], meta["replicas"]) == ("one_device", ["CPU:0"], 1)
    assert "on CPU:0 (one_device)" in run.summary()


# -- XLA --------------------------------------------------------------------------------------
def _digits_spec(augmentation, **training):
    return {"name": "xla_digits", "seed": 5,
            "data": {"source": {"type": "bundled", "name": "digits"},
                     "splits": {"validation": 0.2},
                     "preprocessing": [{"type": "min_max", "range": [0, 1], "per": "feature"}],
                     "augmentation": augmentation},
            "model": {"inputs": [{"name": "image", "shape": [8, 8, 1]}],
                      "layers": [{"type": "flatten"},
                                 {"type": "dense", "units": 10, "activation": "softmax"}]},
            "training": {"loss": "sparse_categorical_crossentropy", "batch_size": 64,
                         "epochs": 1, "steps_per_epoch": 2, "verbose": 0, **training}}


def test_auto_leaves_xla_off_here_and_true_compiles_without_the_augmentation(tmp_path):
    augmentation = [{"type": "rotate", "factor": 0.1}, {"type": "gaussian_noise",
                                                        "stddev": 0.05}]
    auto = kspec.fit(_digits_spec(augmentation), out=tmp_path)
    compute = json.loads((auto.run_dir / "meta.json").read_text())["compute"]
    assert compute["xla"] is False and compute["jit_compile"] == "auto"
    assert compute["xla_off"] == "auto: Keras leaves XLA off on machines without a GPU"
    assert "image_rotate_0" in [layer.name for layer in auto.model.layers]

    run = kspec.fit(_digits_spec(augmentation, jit_compile=True), out=tmp_path)
    names = [layer.name for layer in run.model.layers]
    # rotate runs in the input pipeline; the noise after it stays in the compiled model
    assert "image_rotate_0" not in names and "image_gaussian_noise_1" in names
    assert run.model.jit_compile is True
    assert json.loads((run.run_dir / "meta.json").read_text())["compute"]["xla"] is True
    assert "XLA on" in run.summary() and np.isfinite(run.history["loss"]).all()


def test_the_pipeline_augments_preprocessed_values_as_the_model_would():
    """x' = P^-1(A(P(x))): the model's own preprocessing turns x' into exactly A(P(x))."""
    import tensorflow as tf

    from kspec.data.loading import load_data
    from kspec.data.preprocess import input_layers
    from kspec.train.xla import split_for_xla

    spec = kspec.load_spec(_digits_spec([{"type": "rotate", "factor": 0.2,
                                          "fill_mode": "constant"}], jit_compile=True))
    data = load_data(spec)
    x = data.train.x["image"][:16]
    kept, host = split_for_xla(spec, input_layers(spec, data))
    (scaling,) = kept["image"]  # only the fitted min_max stays in the model
    moved, _ = host(tf.constant(x), None)
    reference = input_layers(spec, data)["image"]  # the same layers, freshly seeded
    expected = reference[1](reference[0](x), training=True)
    np.testing.assert_allclose(np.asarray(scaling(moved)), np.asarray(expected), atol=1e-5)
    assert not np.allclose(np.asarray(moved), x)  # it did rotate


@pytest.mark.parametrize("augmentation, path, words", [
    ([{"type": "crop", "height": 6, "width": 6}, {"type": "rotate", "factor": 0.1}],
     "data.augmentation[0]", "list crop after"),
])
def test_an_augmentation_order_that_cannot_move_is_refused(augmentation, path, words,
                                                           tmp_path):
    with pytest.raises(SpecError) as e:
        kspec.fit(_digits_spec(augmentation, jit_compile=True), out=tmp_path)
    assert e.value.path == path and words in str(e.value)


def test_a_layer_xla_cannot_compile_is_named_at_its_spec_path(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["noise,city,kind"] + [f"{rng.normal():.3f},{c},{k}" for c, k in
                                  zip(["a", "b", "c", "a"] * 10, [0, 1] * 20)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    spec = {"name": "lookup", "seed": 1,
            "data": {"source": {"type": "csv", "path": str(tmp_path / "t.csv"),
                                "label": "kind", "features": ["noise"]},
                     "categorical": {"city": "one_hot"}},
            "model": {"inputs": [{"name": "features"}],
                      "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"loss": "binary_crossentropy", "epochs": 1, "verbose": 0,
                         "jit_compile": True}}
    with pytest.raises(SpecError) as e:
        kspec.fit(spec, out=tmp_path)
    assert e.value.path == "data.categorical.city"
    assert "StringLookup" in str(e.value) and "cannot be compiled by XLA" in str(e.value)


# -- the guide --------------------------------------------------------------------------
def test_the_yaml_in_the_scale_guide_is_valid():
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "scale.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    full = [b for b in blocks if b.startswith("kspec:")]
    assert len(full) == 1 and len(blocks) == 2
    spec = kspec.load_spec(full[0])
    assert spec.training.distribution.devices == 2 and spec.training.jit_compile is True
    for fragment in blocks:  # each training: section is valid in that spec
        raw = spec.to_dict()
        raw["training"].update(yaml.safe_load(fragment)["training"])
        kspec.load_spec(raw)


def test_why_auto_left_xla_off_names_the_layer(monkeypatch):
    """On a GPU machine, auto turns XLA off for a layer that cannot be compiled: the run
    says which (simulated: this machine has no GPU, which auto would name first)."""
    import tensorflow as tf

    from kspec.data.loading import load_data
    from kspec.train.loop import build_compiled
    from kspec.train.xla import why_not

    spec = kspec.load_spec(_digits_spec([{"type": "zoom", "height": 0.1}]))
    model = build_compiled(spec, load_data(spec))
    assert why_not(model, spec) == "auto: Keras leaves XLA off on machines without a GPU"
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["GPU:0"] if kind == "GPU" else real(kind))
    assert why_not(model, spec) == ("auto: layer 'image_zoom_0' (RandomZoom) cannot be "
                                    "compiled (jit_compile: true moves augmentation to the "
                                    "input pipeline)")


def test_search_trials_build_under_the_precision(tmp_path):
    import keras

    spec = _digits_spec([], precision="mixed_bfloat16")
    spec["model"]["layers"][1]["units"] = 10
    spec["model"]["layers"].insert(1, {"type": "dense", "units": {"$choice": [8, 16]},
                                       "activation": "relu"})
    spec["search"] = {"max_trials": 1, "objective": "val_loss"}
    result = kspec.tune(spec, out=tmp_path, verbose=0)
    best = keras.saving.load_model(result.best_model_path, safe_mode=True)
    assert best.get_layer("dense_1").compute_dtype == "bfloat16"
    assert best.outputs[0].dtype == "float32"


_THREADS_CHILD = """
import json, sys
import numpy as np
import kspec
spec = json.loads(sys.argv[1])
x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
run = kspec.fit(spec, data=(x, (x[:, 0] > 0).astype("int64")), out=sys.argv[2], epochs=1)
import tensorflow as tf
threads = tf.config.threading.get_inter_op_parallelism_threads()
print("THREADS", threads, run.metrics["train"]["loss"])
"""


@pytest.mark.parametrize("env, expected", [({}, 1), ({"TF_NUM_INTEROP_THREADS": "2"}, 0)])
def test_a_cpu_run_uses_one_interop_thread_unless_the_user_chose(tiny_spec, tmp_path, env,
                                                                   expected):
    """A fresh process on this CPU-only machine: kspec sets one inter-op thread before
    TensorFlow starts; TF_NUM_INTEROP_THREADS is the user's choice and is left alone."""
    import os
    import subprocess
    import sys

    spec = _spec(tiny_spec)
    spec["model"]["inputs"] = [{"name": "features", "shape": [4]}]
    spec["training"]["loss"] = "sparse_categorical_crossentropy"
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS_CHILD, json.dumps(spec), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("THREADS")), None)
    assert line is not None, proc.stderr[-2000:]
    threads, loss = line.split()[1:]
    assert int(threads) == expected and np.isfinite(float(loss))


def test_no_interop_change_with_a_distribution_or_once_tensorflow_started(tiny_spec):
    from kspec.train.scale import one_interop_thread

    mirrored = kspec.load_spec(_spec(tiny_spec, distribution={"strategy": "one_device"}))
    assert one_interop_thread(mirrored) is False
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # this process's TensorFlow has started
    assert one_interop_thread(kspec.load_spec(tiny_spec)) is False
