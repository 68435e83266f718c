"""A crash or a failed check mid-export never leaves a partial version or touches old ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kspec.exporter.api as api
from kspec import export
from kspec.exporter import ParityError
from kspec.exporter.layout import TMP_PREFIX, remove_stale_temps


@pytest.fixture
def published(tiny_model, tiny_sample, tmp_path):
    """Two published versions of the tiny model (the second a copy: exports cost seconds)."""
    first = export(tiny_model, tmp_path, sample=tiny_sample).path
    shutil.copytree(first, first.with_name("2"))
    return tmp_path / "tiny"


def _entries(model_dir):
    return sorted(p.name for p in model_dir.iterdir())


@pytest.mark.parametrize("step", ["_write_and_load", "compare", "write_metadata"])
def test_crash_at_any_step_leaves_earlier_versions_intact(published, tiny_model, tiny_sample,
                                                          monkeypatch, snapshot, step):
    before = snapshot(published)
    assert _entries(published) == ["1", "2"]

    def crash(*args, **kwargs):
        raise RuntimeError(f"simulated crash in {step}")

    target = api.metadata if step == "write_metadata" else api
    monkeypatch.setattr(target, step, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export(tiny_model, published.parent, sample=tiny_sample)
    assert _entries(published) == ["1", "2"]  # no "3", no temporary folder
    assert snapshot(published) == before


def test_crash_after_the_artifact_is_written(published, tiny_model, tiny_sample, monkeypatch,
                                             snapshot):
    """The SavedModel is complete in the temporary folder when the crash comes."""
    before = snapshot(published)
    real_publish = api.layout.publish
    seen = {}

    def crash(tmp, model_dir, version):
        seen["had_model"] = (tmp / "saved_model.pb").is_file()
        raise KeyboardInterrupt  # BaseException: cleanup must still happen

    monkeypatch.setattr(api.layout, "publish", crash)
    with pytest.raises(KeyboardInterrupt):
        export(tiny_model, published.parent, sample=tiny_sample)
    assert seen["had_model"]
    assert _entries(published) == ["1", "2"] and snapshot(published) == before
    monkeypatch.setattr(api.layout, "publish", real_publish)
    assert export(tiny_model, published.parent, sample=tiny_sample).version == 3


def test_failed_parity_check_publishes_nothing(published, tiny_model, tiny_sample, monkeypatch,
                                               snapshot):
    before = snapshot(published)
    real = api.keras_predict
    # A reference that the SavedModel cannot match: as if the export had lost a layer.
    monkeypatch.setattr(api, "keras_predict",
                        lambda model, inputs: {k: v + 0.01 for k, v in real(model, inputs).items()})
    with pytest.raises(ParityError, match=r"output 'out' differs from Keras by up to 0\.01") \
            as info:
        export(tiny_model, published.parent, sample=tiny_sample)
    assert info.value.report.outputs["out"].deterministic
    assert not info.value.report.outputs["out"].within_tolerance
    assert _entries(published) == ["1", "2"] and snapshot(published) == before


def test_nondeterministic_signature_fails_the_check(tiny_model, tiny_sample, tmp_path, monkeypatch):
    """Augmentation left active at serving time is caught (two calls must agree exactly)."""
    import kspec.exporter.signature as signature

    def training_mode(model, plan=None):
        return lambda inputs: {"out": model(inputs["x"], training=True)}

    monkeypatch.setattr(signature, "serving_function", training_mode)
    with pytest.raises(ParityError, match="differs between two calls"):
        export(tiny_model, tmp_path, sample=tiny_sample)
    assert _entries(tmp_path / "tiny") == []


def test_stale_temp_of_a_dead_process_is_removed(published):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = published / f"{TMP_PREFIX}{int(dead.stdout)}-abcd1234"
    live = published / f"{TMP_PREFIX}{os.getpid()}-abcd1234"
    for d in (stale, live):
        (d / "variables").mkdir(parents=True)
        (d / "saved_model.pb").write_bytes(b"half")
    assert remove_stale_temps(published) == [stale]
    assert not stale.exists() and live.exists()  # a live exporter's folder is left alone
    assert (published / "1" / "saved_model.pb").is_file()


def test_temporary_folder_is_invisible_to_tf_serving(published, tiny_model, tiny_sample,
                                                     monkeypatch):
    """While an export is being checked, its folder is not an integer version name."""
    names = {}
    real = api.compare

    def spy(*args, **kwargs):
        names["during"] = _entries(published)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "compare", spy)
    export(tiny_model, published.parent, sample=tiny_sample)
    during = [n for n in names["during"] if n not in ("1", "2")]
    assert len(during) == 1 and during[0].startswith(TMP_PREFIX)
    assert not during[0].isdigit()
    assert _entries(published) == ["1", "2", "3"]
    np.testing.assert_equal(sorted(os.listdir(published / "3")),
                            ["assets", "assets.extra", "fingerprint.pb", "saved_model.pb",
                             "variables"])
