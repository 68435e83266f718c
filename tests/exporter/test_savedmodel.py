"""SavedModel export: signature names/dtypes, inference-mode parity, determinism, metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kspec import export
from kspec.exporter import ExportError, read_metadata


def _load_signature(path: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return loaded, loaded.signatures["serving_default"]


def test_rich_model_serves_raw_inputs_deterministically(rich_model, digits, tmp_path):
    import tensorflow as tf

    x, _ = digits
    result = export(rich_model, tmp_path, sample=x[:64])
    assert result.path == tmp_path / "rich" / "1"
    assert result.check.passed and result.check.samples == 64

    loaded, fn = _load_signature(result.path)
    raw = tf.constant(x[100:164])  # rows the export check never saw
    first = fn(image=raw)["digit"].numpy()
    second = fn(image=raw)["digit"].numpy()
    np.testing.assert_array_equal(first, second)
    expected = rich_model.predict(x[100:164], verbose=0)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)
    # The model really is random in training mode: the signature must not be.
    noisy = rich_model(x[100:164], training=True).numpy()
    assert np.abs(noisy - expected).max() > 1e-3


def test_signature_keys_dtypes_and_free_batch(multi_model, multi_sample, tmp_path):
    result = export(multi_model, tmp_path, name="two_heads", sample=multi_sample,
                    class_outputs=["kind"])
    _, fn = _load_signature(result.path)
    _, inputs = fn.structured_input_signature
    assert {k: (v.dtype.name, v.shape.as_list()) for k, v in inputs.items()} == {
        "image": ("float32", [None, 8, 8, 1]), "ids": ("int32", [None, 3])}
    outputs = fn.structured_outputs
    assert sorted(outputs) == ["kind", "kind_class", "kind_probability", "size"]
    assert outputs["kind_class"].dtype.name == "int64"

    served = {k: v.numpy() for k, v in fn(**{k: v[:5] for k, v in multi_sample.items()}).items()}
    want = multi_model.predict({k: v[:5] for k, v in multi_sample.items()}, verbose=0)
    np.testing.assert_allclose(served["size"], want["size"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(served["kind_class"], np.argmax(want["kind"], axis=-1))
    np.testing.assert_allclose(served["kind_probability"], want["kind"].max(-1), atol=1e-6)
    assert result.signature["inputs"]["ids"] == {"dtype": "int32", "shape": [None, 3]}


def test_saved_model_cli_lists_the_signature(multi_model, multi_sample, tmp_path):
    result = export(multi_model, tmp_path, sample=multi_sample)
    cli = Path(sys.executable).with_name("saved_model_cli")
    out = subprocess.run([str(cli), "show", "--all", "--dir", str(result.path)],
                         capture_output=True, text=True, timeout=120,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "signature_def['serving_default']" in text
    for key in ("inputs['image']", "inputs['ids']", "outputs['kind']", "outputs['size']"):
        assert key in text
    assert "DT_INT32" in text and "shape: (-1, 3)" in text
    assert "tensorflow/serving/predict" in text


def test_run_directory_export_carries_metadata(trained_run, tmp_path):
    result = export(trained_run.run_dir, tmp_path, class_outputs=True)
    assert result.name == "digits_export" and result.version == 1
    assert "test split" in result.check.inputs  # real rows, not synthetic ones

    # Readable with json alone, no Keras: spec, versions, metrics, check.
    meta = json.loads((result.path / "assets.extra" / "kspec.json").read_text())
    assert meta == read_metadata(result.path)
    assert meta["signature"]["inputs"] == {"image": {"dtype": "float32",
                                                     "shape": [None, 8, 8, 1]}}
    assert set(meta["signature"]["outputs"]) == {"output", "output_class",
                                                 "output_probability"}
    assert meta["versions"]["tensorflow"].startswith("2.")
    assert meta["metrics"]["test"]["accuracy"] == pytest.approx(
        trained_run.metrics["test"]["accuracy"])
    assert meta["check"]["passed"] is True
    assert meta["seed"] == 5
    spec_text = (result.path / "assets.extra" / "spec.yaml").read_text()
    assert "name: digits_export" in spec_text and "zscore" in spec_text and "zca" in spec_text

    # The fitted z-score and whitening are inside the graph: raw pixels in, the answer out.
    # Served on the raw test split, the export reproduces the accuracy the run recorded.
    test = trained_run.data.test
    _, fn = _load_signature(result.path)
    served = fn(image=test.x["image"])
    accuracy = float(np.mean(served["output_class"].numpy() == test.y))
    assert accuracy == pytest.approx(trained_run.metrics["test"]["accuracy"], abs=1e-6)


def test_versions_count_up_and_never_overwrite(tiny_model, tiny_sample, tmp_path):
    assert export(tiny_model, tmp_path, sample=tiny_sample).version == 1
    assert export(tiny_model, tmp_path, sample=tiny_sample).version == 2
    assert export(tiny_model, tmp_path, sample=tiny_sample, version=7).version == 7
    assert export(tiny_model, tmp_path, sample=tiny_sample).version == 8
    with pytest.raises(ExportError, match="version 2 of 'tiny' already exists"):
        export(tiny_model, tmp_path, sample=tiny_sample, version=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"format": "onnx"}, "unknown export format 'onnx'"),
    ({"name": "a/b"}, "invalid model name 'a/b'"),
    ({"version": 0}, "version must be a positive integer"),
    ({"class_outputs": ["nope"]}, r"class outputs \['nope'\] are not outputs"),
])
def test_bad_options_are_reported(tiny_model, tiny_sample, tmp_path, kwargs, message):
    with pytest.raises(ExportError, match=message):
        export(tiny_model, tmp_path, sample=tiny_sample, **kwargs)
    assert not any(tmp_path.rglob("saved_model.pb"))


def test_bad_sources_are_reported(tmp_path):
    with pytest.raises(ExportError, match="not a finished kspec run directory"):
        export(tmp_path, tmp_path / "models")
    with pytest.raises(ExportError, match="cannot export a dict"):
        export({"model": 1}, tmp_path / "models")


def test_importing_export_does_not_import_tensorflow():
    code = ("import sys, kspec, kspec.exporter; "
            "assert callable(kspec.export); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_kspec_graph_model_outputs_keep_their_names(tmp_path):
    """A spec's graph model (shared trunk, two heads named by Identity layers) exports with
    one signature key per named output, and class outputs see through the Identity."""
    import kspec
    from kspec.compiler.model import build_model

    spec = kspec.load_spec(Path(__file__).resolve().parents[2] / "specs" / "multitask.yaml")
    model = build_model(spec)
    x = np.random.default_rng(0).normal(size=(16, 10)).astype("float32")
    result = export(model, tmp_path, spec=spec, sample=x, class_outputs=True)
    assert result.name == "multitask_diabetes"
    assert sorted(result.signature["outputs"]) == [
        "high_risk", "high_risk_class", "high_risk_probability", "progression"]
    _, fn = _load_signature(result.path)
    served = {k: v.numpy() for k, v in fn(patient=x).items()}
    want = dict(zip(model.output_names, model.predict(x, verbose=0)))
    np.testing.assert_allclose(served["progression"], want["progression"], atol=1e-5)
    np.testing.assert_array_equal(served["high_risk_class"], want["high_risk"][:, 0] > 0.5)


SERVE_WITHOUT_KSPEC = """
import sys
import numpy as np
import tensorflow as tf

already = {m for m in sys.modules if m.startswith(("keras", "kspec"))}
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(image=tf.constant(np.load(sys.argv[2])))
new = sorted(m for m in sys.modules if m.startswith(("keras", "kspec")) and m not in already)
assert not new, new
np.save(sys.argv[3], out["output"].numpy())
"""


def test_serving_needs_no_kspec_or_keras_code(trained_run, tmp_path):
    """The run's model uses kspec's own preprocessing layers; the SavedModel serves in a
    process that never imports kspec, and loads no Keras module beyond what TF imports."""
    kinds = {type(layer).__module__ for layer in trained_run.model.layers}
    assert "kspec.data.keras_layers" in kinds
    result = export(trained_run, tmp_path)
    x = trained_run.data.test.x["image"][:8].astype("float32")  # the signature's dtype
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-c", SERVE_WITHOUT_KSPEC, str(result.path),
                    str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   check=True, timeout=120, cwd=tmp_path,
                   env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"),
                               trained_run.model.predict(x, verbose=0), atol=1e-5)
