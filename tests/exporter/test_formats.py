"""Other targets: TFLite (checked through the interpreter) and .keras (safe_mode reload)."""

from __future__ import annotations

import json

import numpy as np

from kspec import export


def test_tflite_export_is_checked_through_the_interpreter(multi_model, multi_sample, tmp_path):
    from kspec.exporter.tflite import runner

    result = export(multi_model, tmp_path, format="tflite", sample=multi_sample,
                    fold_batchnorm=True, class_outputs=["kind"])
    assert result.model_path == tmp_path / "multi" / "1" / "model.tflite"
    assert sorted(p.name for p in result.path.iterdir()) == ["assets.extra", "model.tflite"]
    assert result.check.target == "tflite" and result.check.passed
    assert result.fold["folded"] == [{"batch_norm": "trunk_bn", "into": "trunk"}]

    run = runner(result.model_path)
    assert set(run.input_details) == {"image", "ids"}
    for rows in (1, 9):  # the batch dimension is free
        batch = {k: v[:rows] for k, v in multi_sample.items()}
        got = run(batch)
        want = multi_model.predict(batch, verbose=0)
        assert got["kind"].shape == (rows, 4) and got["kind_class"].shape == (rows,)
        np.testing.assert_allclose(got["kind"], want["kind"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got["size"], want["size"], rtol=1e-4, atol=1e-4)
    meta = json.loads((result.path / "assets.extra" / "kspec.json").read_text())
    assert meta["format"] == "tflite" and meta["tflite"]["bytes"] > 1000


def test_keras_export_reloads_in_safe_mode(rich_model, digits, tmp_path):
    import keras

    x, _ = digits
    result = export(rich_model, tmp_path, format="keras", sample=x[:32])
    assert result.model_path.name == "model.keras"
    reloaded = keras.saving.load_model(result.model_path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x[:40], verbose=0),
                               rich_model.predict(x[:40], verbose=0), rtol=1e-5, atol=1e-6)
    assert result.signature["outputs"] == {"digit": {"dtype": "float32", "shape": [None, 10]}}


def test_predict_loads_a_tflite_version_folder(multi_model, multi_sample, tmp_path):
    from kspec.exporter.predict import load_predictor, read_inputs

    export(multi_model, tmp_path, format="tflite", sample=multi_sample)
    predictor = load_predictor(tmp_path / "multi")  # the highest version
    assert predictor.kind == "tflite" and predictor.path.name == "model.tflite"
    assert predictor.inputs == {"image": {"dtype": "float32", "shape": [None, 8, 8, 1]},
                                "ids": {"dtype": "int32", "shape": [None, 3]}}
    np.savez(tmp_path / "in.npz", **{k: v[:4] for k, v in multi_sample.items()})
    got = predictor.run(read_inputs([tmp_path / "in.npz"], predictor))
    want = multi_model.predict({k: v[:4] for k, v in multi_sample.items()}, verbose=0)
    np.testing.assert_allclose(got["size"], want["size"], rtol=1e-4, atol=1e-4)
