"""Transfer learning: reuse an earlier run, cut it, freeze it, fine-tune in phases."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import kspec
from kspec.errors import SpecError


def pretrain_spec() -> dict:
    return {
        "name": "pre", "seed": 2,
        "data": {"splits": {"validation": 0.2}},
        "model": {"inputs": [{"name": "features", "shape": [4]}], "layers": [
            {"type": "batch_norm", "name": "bn", "momentum": 0.5},
            {"type": "dense", "units": 8, "activation": "relu", "name": "hidden"},
            {"type": "dense", "units": 8, "activation": "relu", "name": "embed"},
            {"type": "dense", "units": 3, "activation": "softmax"}]},
        "training": {"optimizer": {"type": "adam", "learning_rate": 0.01},
                     "loss": "sparse_categorical_crossentropy", "batch_size": 16,
                     "epochs": 2, "verbose": 0},
    }


def finetune_spec(base: dict, phases: list | None = None) -> dict:
    spec = copy.deepcopy(pretrain_spec())
    spec["name"] = "fine"
    spec["model"]["base"] = base
    spec["model"]["layers"] = [{"type": "dense", "units": 3, "activation": "softmax"}]
    spec["training"]["phases"] = phases or [
        {"name": "head", "trainable": "head", "epochs": 1},
        {"name": "last", "trainable": {"last": 1}, "epochs": 1,
         "optimizer": {"type": "sgd", "learning_rate": 0.05}},
        {"name": "everything", "trainable": "all", "epochs": 1,
         "optimizer": {"type": "sgd", "learning_rate": 0.05}},
    ]
    return spec


def _snapshots():
    import keras

    class Snapshot(keras.callbacks.Callback):
        """Weights of the base's layers at the end of every phase (one fit call each)."""

        def __init__(self):
            super().__init__()
            self.taken = []

        def on_train_end(self, logs=None):
            base = self.model.get_layer("base")
            self.taken.append({layer.name: [np.array(w) for w in layer.weights]
                               for layer in base.layers})

    return Snapshot()


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """One pre-training run shared by this module's tests (they only read it)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=120)
    x = rng.normal(size=(120, 4)).astype("float32") + y[:, None] * 2.0
    return kspec.fit(pretrain_spec(), data=(x, y), out=tmp_path_factory.mktemp("pre"))


def test_a_pretrained_run_is_cut_frozen_then_fine_tuned(pretrained, tiny_classification,
                                                        tmp_path):
    before = {layer.name: [np.array(w) for w in layer.weights]
              for layer in pretrained.model.layers}
    snap = _snapshots()
    run = kspec.fit(finetune_spec({"run": "pre", "cut_at": "embed"}), data=tiny_classification,
                    out=pretrained.run_dir.parent, callbacks=[snap])
    base = run.model.get_layer("base")
    assert [layer.name for layer in base.layers] == ["features", "bn", "hidden", "embed"]
    head, last, everything = snap.taken
    # phase 1: the base is frozen: every weight, BN statistics included, is unchanged
    for name in ("bn", "hidden", "embed"):
        assert _same(head[name], before[name]), name
    # phase 2: only the last layer with weights trains
    assert not _same(last["embed"], head["embed"])
    assert _same(last["hidden"], head["hidden"]) and _same(last["bn"], head["bn"])
    # phase 3: everything trains, but the base's BN stays in inference mode: its moving
    # mean and variance (weights 2 and 3) never move
    assert not _same(everything["hidden"], last["hidden"])
    assert _same(everything["bn"][2:], before["bn"][2:])
    assert [p["name"] for p in run.phases] == ["head", "last", "everything"]
    assert [p["first_epoch"] for p in run.phases] == [1, 2, 3]
    assert run.phases[0]["trainable_weights"] < run.phases[1]["trainable_weights"] \
        < run.phases[2]["trainable_weights"]
    assert len(run.history["loss"]) == 3 and "phase    last" in run.summary()


def test_base_from_a_keras_file_or_a_run_directory(pretrained, tiny_classification, tmp_path):
    for where in (pretrained.run_dir, pretrained.run_dir / "model.keras"):
        spec = finetune_spec({"path": str(where), "cut_at": "hidden"},
                             phases=[{"trainable": "head", "epochs": 1}])
        _, _, model = kspec.train.fit.prepare(spec, tiny_classification)
        assert model.get_layer("base").output.shape[-1] == 8
        assert not model.get_layer("base").trainable


def test_cutting_at_an_unknown_layer_lists_the_layers(pretrained, tiny_classification):
    spec = finetune_spec({"path": str(pretrained.run_dir), "cut_at": "embd"})
    with pytest.raises(SpecError) as info:
        kspec.train.fit.prepare(spec, tiny_classification)
    assert info.value.path == "model.base.cut_at"
    assert "did you mean 'embed'" in str(info.value) and "hidden" in str(info.value)


def test_a_missing_run_says_which_spec_to_fit_first(tmp_path, monkeypatch, tiny_classification):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "1_pre.yaml").write_text("name: pre\n")
    with pytest.raises(SpecError) as info:
        kspec.fit(finetune_spec({"run": "pre"}), data=tiny_classification, out=tmp_path / "o")
    assert info.value.path == "model.base.run"
    assert "no finished run of spec 'pre'" in str(info.value)
    assert "kspec fit specs/1_pre.yaml" in str(info.value)


def test_phases_that_need_a_base_are_refused_without_one(tiny_classification):
    spec = pretrain_spec()
    spec["training"]["phases"] = [{"trainable": {"last": 1}}]
    with pytest.raises(SpecError, match=r"training\.phases\[0\]\.trainable: this model has no "
                       "transfer base"):
        kspec.fit(spec, data=tiny_classification, out="/nonexistent-not-written")


def test_a_saved_model_directory_is_a_base(pretrained, tiny_classification, tmp_path):
    export_dir = tmp_path / "sm"
    pretrained.model.export(str(export_dir), verbose=False)
    spec = finetune_spec({"path": str(export_dir)}, phases=[{"trainable": "head", "epochs": 1}])
    spec["training"]["epochs"] = 1
    _, data, model = kspec.train.fit.prepare(spec, tiny_classification)
    x = tiny_classification[0][:4]
    out = model.get_layer("base")(x)  # the serving signature's outputs, by name
    out = next(iter(out.values())) if isinstance(out, dict) else out
    np.testing.assert_allclose(out, pretrained.model(x), atol=1e-5)
    bad = finetune_spec({"path": str(export_dir), "cut_at": "embed"})
    with pytest.raises(SpecError, match=r"model\.base\.cut_at: a SavedModel .* cannot be cut"):
        kspec.train.fit.prepare(bad, tiny_classification)


def test_keras_applications_by_name_with_local_weights(tmp_path):
    spec = {
        "name": "app", "model": {
            "inputs": [{"name": "image", "shape": [32, 32, 3]}],
            "base": {"application": "MobileNetV2", "weights": None, "pooling": "avg",
                     "options": {"alpha": 0.35}},
            "layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
        "training": {"loss": "sparse_categorical_crossentropy"},
    }
    random_model = kspec.build(kspec.load_spec(spec))
    weights = tmp_path / "mobilenet.weights.h5"
    random_model.get_layer("base").save_weights(str(weights))
    spec["model"]["base"]["weights"] = str(weights)
    spec["seed"] = 99  # a different seed: equal weights can only come from the file
    loaded = kspec.build(kspec.load_spec(spec))
    a = random_model.get_layer("base").weights
    b = loaded.get_layer("base").weights
    assert len(a) == len(b) > 100 and all(np.array_equal(x, y) for x, y in zip(a, b))
    spec["model"]["base"]["weights"] = str(tmp_path / "missing.h5")
    with pytest.raises(SpecError, match=r"model\.base\.weights: weights file not found"):
        kspec.build(kspec.load_spec(spec))


def _trainable(model, base="base"):
    return {layer.name: layer.trainable for layer in model.get_layer(base).layers
            if layer.weights}


def test_phase_selectors_on_a_graph_base_block(pretrained, tiny_classification):
    from kspec.train.phases import set_trainable

    spec = {
        "name": "graph_fine", "data": {"splits": {"validation": 0.2}},
        "model": {"inputs": [{"name": "features", "shape": [4]}], "blocks": [
            {"name": "backbone", "inputs": "features",
             "base": {"path": str(pretrained.run_dir), "cut_at": "embed"}},
            {"name": "head", "inputs": "backbone", "layers": [
                {"type": "dense", "units": 4, "trainable": False, "name": "fixed"},
                {"type": "dense", "units": 3, "activation": "softmax"}]}]},
        "training": {"loss": "sparse_categorical_crossentropy", "verbose": 0},
    }
    spec_obj, _, model = kspec.train.fit.prepare(spec, tiny_classification)
    assert spec_obj.model.base_names() == ["backbone"]
    state = {layer.name: layer.trainable for layer in model.layers}
    assert _trainable(model, "backbone") == {"bn": False, "hidden": False, "embed": False}

    set_trainable(model, spec_obj, kspec.spec.training.NamePattern(pattern="hid"), "p", state)
    assert _trainable(model, "backbone") == {"bn": False, "hidden": True, "embed": False}
    set_trainable(model, spec_obj, kspec.spec.training.LastN(last=5), "p", state)
    # batch norm of a frozen base stays frozen (inference mode) even when "selected"
    assert _trainable(model, "backbone") == {"bn": False, "hidden": True, "embed": True}
    set_trainable(model, spec_obj, "all", "p", state)
    assert model.get_layer("fixed").trainable is False  # frozen by the spec: every phase
    set_trainable(model, spec_obj, "head", "p", state)
    assert not any(_trainable(model, "backbone").values())
    with pytest.raises(SpecError, match=r"p\.trainable\.pattern: no layer with weights "
                       r"matches \['nothing'\]"):
        set_trainable(model, spec_obj, kspec.spec.training.NamePattern(pattern="nothing"), "p",
                      state)


def test_resuming_a_phased_run_keeps_its_base_and_starts_over(pretrained, tiny_classification,
                                                              tmp_path):
    import json

    import keras

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("simulated crash in the third phase")

    # the fine-tune run lives in another folder than the pre-training run: the base is
    # found through `out` on the first attempt and through meta.json when resuming
    spec = finetune_spec({"run": "pre", "cut_at": "embed"})
    with pytest.raises(RuntimeError, match="simulated crash"):
        kspec.fit(spec, data=tiny_classification, out=pretrained.run_dir.parent,
                  callbacks=[Crash()])
    run_dir = max(pretrained.run_dir.parent.glob("fine-*"))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed"
    assert meta["bases"] == {"model.base": str((pretrained.run_dir / "model.keras").resolve())}
    moved = tmp_path / "elsewhere" / run_dir.name
    moved.parent.mkdir()
    run_dir.rename(moved)
    run = kspec.fit(None, data=tiny_classification, resume=moved)
    assert len(run.history["loss"]) == 3
    rows = (moved / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]
