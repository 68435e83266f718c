"""kspec evaluate --under: fixed transforms, scores on a run and on an export, and a transform
that cannot change the input (the flip of a symmetric image) leaves the score unchanged."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import kspec
from kspec.cli import main
from kspec.diagnose import evaluate_under
from kspec.diagnose.transforms import parse_transforms

IMAGE_SPEC = {
    "name": "sym", "seed": 4, "data": {"splits": {"validation": 0.2, "test": 0.3}},
    "model": {"inputs": [{"name": "image", "shape": [6, 6, 1]}],
              "layers": [{"type": "flatten"},
                         {"type": "dense", "units": 8, "activation": "relu"},
                         {"type": "dense", "units": 2, "activation": "softmax"}]},
    "training": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                 "optimizer": {"type": "adam", "learning_rate": 0.02}, "epochs": 4,
                 "batch_size": 32, "verbose": 0},
}


def test_flipping_a_symmetric_image_changes_nothing(tmp_path, symmetric_images):
    run = kspec.fit(IMAGE_SPEC, data=symmetric_images, out=tmp_path)
    result = evaluate_under(run, "flip, flip=vertical")
    clean, mirrored, upside_down = result.rows
    assert clean["score"] == pytest.approx(run.test_metrics["accuracy"])
    assert mirrored["score"] == clean["score"] and mirrored["drop"] == 0.0
    # Turning them upside down moves the bright half, which is what the classes differ by.
    assert upside_down["score"] < clean["score"] - 0.2
    assert result.metric == "accuracy" and result.examples == 72
    files = result.write(tmp_path / "out")
    assert [p.name for p in files] == ["robustness.csv", "robustness.png"]
    assert files[0].read_text().splitlines()[1].startswith("clean,")


def test_run_directory_and_export_agree(tmp_path, capsys):
    run = kspec.fit("specs/quickstart.yaml", out=tmp_path / "runs", epochs=2,
                    steps_per_epoch=10, verbose=0)
    under = ["flip", "border=1", "noise=0.2"]
    from_run = evaluate_under(run.run_dir, under)
    kspec.export(run, out=tmp_path / "models")
    from_export = evaluate_under(tmp_path / "models" / "quickstart", under)
    assert from_export.kind == "savedmodel" and from_run.kind == "run"
    for a, b in zip(from_run.rows, from_export.rows):
        assert a["transform"] == b["transform"] and a["score"] == pytest.approx(b["score"])
    assert from_run.rows[0]["score"] == pytest.approx(run.test_metrics["accuracy"])

    assert main(["evaluate", str(run.run_dir), "--under", "flip,border", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["transform"] for r in out["rows"]] == ["clean", "flip", "border"]
    assert (run.run_dir / "robustness.png").is_file()  # a run gets the files by default
    assert main(["evaluate", str(tmp_path / "models" / "quickstart"), "--under", "blurr"]) == 2
    assert "did you mean 'blur'" in capsys.readouterr().err


def test_transforms_are_exact():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)

    def apply(text, image=x, lo=0.0, hi=15.0, seed=0):
        (t,) = parse_transforms(text)
        return t.apply(image, lo, hi, np.random.default_rng(seed))

    shifted = apply("translate=0.25")  # one pixel right and down, background filled
    np.testing.assert_allclose(shifted[0, 1:, 1:, 0], x[0, :-1, :-1, 0], atol=1e-5)
    assert (shifted[0, 0, :, 0] == 0).all() and (shifted[0, :, 0, 0] == 0).all()
    framed = apply("border=1")
    assert (framed[0, [0, -1], :, 0] == 15).all() and (framed[0, :, [0, -1], 0] == 15).all()
    np.testing.assert_array_equal(framed[0, 1:-1, 1:-1], x[0, 1:-1, 1:-1])
    np.testing.assert_array_equal(apply("flip")[0, :, :, 0], x[0, :, ::-1, 0])
    np.testing.assert_array_equal(apply("invert", apply("invert")), x)
    np.testing.assert_array_equal(apply("grayscale"), x)  # one channel: nothing to change
    rgb = np.random.default_rng(0).uniform(size=(2, 3, 3, 3)).astype("float32")
    grey = apply("grayscale", rgb, 0.0, 1.0)
    assert np.allclose(grey[..., 0], grey[..., 2]) and not np.allclose(grey, rgb)
    noisy = apply("noise=0.1", np.zeros((200, 4, 4, 1), "float32"), 0.0, 10.0, seed=1)
    assert noisy.std() == pytest.approx(1.0, rel=0.05)  # 0.1 of the range 0..10
    np.testing.assert_array_equal(noisy, apply("noise=0.1", np.zeros((200, 4, 4, 1),
                                                                      "float32"), 0, 10, 1))
    np.testing.assert_allclose(apply("contrast=0.0"), x, atol=1e-5)
    assert apply("brightness=0.2").min() == pytest.approx(3.0)


@pytest.mark.parametrize("text, message", [
    ("flp", "unknown transform 'flp'; did you mean 'flip'?"),
    ("rotate=abc", "rotate takes a number"),
    ("grayscale=2", "grayscale takes no amount"),
    ("flip=sideways", "flip is horizontal, vertical, both"),
    ("border=-1", "border must be 0 or more"),
])
def test_bad_transforms_say_why(text, message):
    with pytest.raises(kspec.SpecError) as info:
        parse_transforms(text)
    assert info.value.path == "--under" and message in str(info.value)


def test_image_transforms_need_image_inputs(tiny_spec, tiny_classification):
    from kspec.data.loading import load_data

    spec = kspec.load_spec(tiny_spec)
    data = load_data(spec, tiny_classification)
    run = SimpleNamespace(spec=spec, model=kspec.build(spec, data.input_shapes()),
                          run_dir="tiny", data=data)
    assert evaluate_under(run, "noise=0.5").rows[1]["transform"] == "noise=0.5"
    with pytest.raises(kspec.SpecError, match="rotate needs image inputs"):
        evaluate_under(run, "rotate=10")
