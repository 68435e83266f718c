"""training.diagnostics: per-layer statistics recorded while training, TensorBoard options,
and the probe itself (dead and saturated units, restored state)."""

from __future__ import annotations

import copy
import math

import keras
import numpy as np
import pytest

import kspec
from kspec.rundir import RunDir
from kspec.spec.training import TensorBoard
from kspec.train.diagnostics import COLUMNS, Probe, read_rows, tensorboard_callback


def _with_diagnostics(spec: dict, **diag) -> dict:
    spec = copy.deepcopy(spec)
    spec["training"]["diagnostics"] = diag or True
    return spec


def test_diagnostics_are_recorded_without_changing_training(tmp_path, tiny_spec,
                                                            tiny_classification):
    plain = kspec.fit(tiny_spec, data=tiny_classification, out=tmp_path, epochs=3)
    probed = kspec.fit(_with_diagnostics(tiny_spec), data=tiny_classification, out=tmp_path,
                       epochs=3)
    # The probe runs in training mode but restores every non-trainable variable (seeds,
    # batch-norm statistics) and the metrics: the same seed gives the same training.
    for key in plain.history:
        assert probed.history[key] == pytest.approx(plain.history[key], rel=1e-6), key
    assert not (plain.run_dir / "diagnostics.csv").exists()

    rows = read_rows(probed.run_dir / "diagnostics.csv")
    assert (probed.run_dir / "diagnostics.png").stat().st_size > 0
    layers = ["dense_0", "output"]
    assert [(r["epoch"], r["layer"]) for r in rows] == [(e, name) for e in range(4)
                                                        for name in layers]
    header = (probed.run_dir / "diagnostics.csv").read_text().splitlines()[0]
    assert header.split(",") == COLUMNS
    for r in rows:
        assert r["grad_norm"] > 0 and r["weight_norm"] > 0 and r["std"] > 0
        assert 0.0 <= r["dead"] <= 1.0 if r["layer"] == "dense_0" else math.isnan(r["dead"])
        # No optimizer step has happened at initialization (epoch 0); later rows measure one.
        assert math.isnan(r["update_ratio"]) == (r["epoch"] == 0)
    # The last weights' norm is the model's own.
    last = [r for r in rows if r["epoch"] == 3 and r["layer"] == "output"][0]
    kernel, bias = probed.model.get_layer("output").get_weights()
    assert last["weight_norm"] == pytest.approx(np.sqrt((kernel ** 2).sum() + (bias ** 2).sum()),
                                                rel=1e-5)
    assert "errors   train" in probed.summary()


def test_every_and_tensorboard_summaries(tmp_path, tiny_spec, tiny_classification):
    spec = _with_diagnostics(tiny_spec, every=2, probe_batches=1, batch_size=8)
    spec["training"]["callbacks"] = {"tensorboard": {"histogram_freq": 1, "write_graph": False}}
    run = kspec.fit(spec, data=tiny_classification, out=tmp_path, epochs=4)
    assert sorted({r["epoch"] for r in read_rows(run.run_dir / "diagnostics.csv")}) == [0, 2, 4]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.run_dir / "tensorboard" / "diagnostics"),
                              size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"grad_norm/dense_0", "std/output", "activations/dense_0",
            "gradients/output"} <= tags
    assert [e.step for e in events.Tensors("grad_norm/dense_0")] == [0, 2, 4]
    assert (run.run_dir / "tensorboard" / "train").is_dir()  # Keras's own logs beside them


def test_tensorboard_options_reach_the_callback(tmp_path):
    run = RunDir(tmp_path)
    cb = tensorboard_callback(TensorBoard(histogram_freq=2, update_freq=5,
                                          profile_batch=[2, 3], write_graph=False), run)
    assert isinstance(cb, keras.callbacks.TensorBoard)
    assert (cb.histogram_freq, cb.update_freq, cb.write_graph) == (2, 5, False)
    assert cb.log_dir == str(tmp_path / "tensorboard")
    default = tensorboard_callback(True, run)  # `tensorboard: true` keeps working
    assert (default.histogram_freq, default.update_freq) == (0, "epoch")
    spec = kspec.load_spec({"model": {"inputs": [{"name": "x", "shape": [2]}], "layers": [
        {"type": "dense", "units": 1}]}, "training": {"loss": "mse", "callbacks": {
            "tensorboard": True}}})
    assert spec.training.callbacks.tensorboard is True
    with pytest.raises(kspec.SpecError) as info:
        kspec.load_spec(spec.to_dict(), {"training.callbacks.tensorboard": {"histogram": 1}})
    assert info.value.errors[0].path == "training.callbacks.tensorboard.histogram"


def _model(bias: float, activation: str, batch_norm: bool = False):
    inputs = keras.Input((4,), name="x")
    h = keras.layers.Dense(6, activation=activation, name="hidden",
                           bias_initializer=keras.initializers.Constant(bias))(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization(name="bn")(h)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_probe_counts_dead_and_saturated_units_and_restores_state():
    x = {"x": np.random.default_rng(0).normal(size=(32, 4)).astype("float32")}
    y = np.arange(32) % 2
    dead = {r["layer"]: r for r in Probe(_model(-50.0, "relu"))(x, y)}
    assert dead["hidden"]["dead"] == 1.0 and dead["hidden"]["grad_norm"] == 0.0
    assert dead["hidden"]["mean"] == 0.0 and math.isnan(dead["hidden"]["saturated"])
    alive = {r["layer"]: r for r in Probe(_model(50.0, "relu"))(x, y)}
    assert alive["hidden"]["dead"] == 0.0
    saturated = {r["layer"]: r for r in Probe(_model(50.0, "sigmoid"))(x, y)}
    assert saturated["hidden"]["saturated"] == 1.0 and math.isnan(saturated["hidden"]["dead"])

    model = _model(0.0, "tanh", batch_norm=True)
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    rows = {r["layer"]: r for r in Probe(model)(x, y)}
    assert set(rows) == {"hidden", "bn", "out"} and rows["bn"]["activation"] == ""
    for v, old in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)  # moving statistics untouched


@pytest.mark.slow
def test_bench_diagnostics_runs_small(capsys, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_diagnostics.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as when the script runs: its helpers
    spec = importlib.util.spec_from_file_location("bench_diagnostics", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--rows", "600", "--epochs", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "diagnostics every epoch     / diagnostics off = " in out
    assert "/ hand-written = " in out and "one probe pass (256 rows, 5 layers)" in out


def test_a_nested_model_is_one_row():
    # A transfer base or an ensemble member is a model inside the model: one row, and its
    # output is the one of its call in the outer graph (not of its own graph).
    keras.utils.set_random_seed(0)
    base_in = keras.Input((4,), name="x")
    base = keras.Model(base_in, keras.layers.Dense(5, activation="relu", name="b1")(base_in),
                       name="base")
    inputs = keras.Input((4,), name="x")
    out = keras.layers.Dense(2, activation="softmax", name="out")(base(inputs))
    model = keras.Model(inputs, out)
    model.compile(loss="sparse_categorical_crossentropy")
    x = {"x": np.random.default_rng(1).normal(size=(16, 4)).astype("float32")}
    rows = {r["layer"]: r for r in Probe(model)(x, np.arange(16) % 2)}
    assert list(rows) == ["base", "out"] and rows["base"]["units"] == 5
    assert rows["base"]["grad_norm"] > 0 and rows["base"]["type"] == "Functional"
