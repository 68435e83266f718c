"""``kspec export`` and ``kspec predict`` end to end on a real run."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from kspec.cli import main


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """The run exported once through the CLI (folded, with class outputs)."""
    out = tmp_path_factory.mktemp("models")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["export", str(trained_run.run_dir), "--out", str(out), "--name", "digits",
                     "--fold-batchnorm", "--class-outputs", "--samples", "32"])
    assert code == 0
    EXPORT_OUTPUT.append(printed.getvalue())
    return out / "digits"


EXPORT_OUTPUT: list[str] = []


def test_export_command_prints_signature_fold_and_check(exported):
    text = EXPORT_OUTPUT[0]
    assert f"exported digits version 1 (savedmodel) -> {exported / '1'}" in text
    assert "input   image" in text and "[None, 8, 8, 1]" in text
    assert "output  output_class             int64" in text
    assert "folded  batch_norm_2 into dense_1" in text
    assert "parity passed: savedmodel vs Keras on 32 rows (test split" in text
    meta = json.loads((exported / "1" / "assets.extra" / "kspec.json").read_text())
    assert meta["fold"]["folded"] == [{"batch_norm": "batch_norm_2", "into": "dense_1"}]
    assert meta["class_outputs"] == {"output": "softmax"}
    assert meta["check"]["samples"] == 32


def test_export_command_reports_errors_without_traceback(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a finished kspec run directory" in err
    assert "Traceback" not in err


def test_predict_npz_matches_the_keras_model(exported, trained_run, tmp_path, capsys):
    x = trained_run.data.test.x["image"][:12]
    np.savez(tmp_path / "batch.npz", image=x)
    out = tmp_path / "preds.npz"
    assert main(["predict", str(exported), "--input", str(tmp_path / "batch.npz"),
                 "--output", str(out)]) == 0
    assert "savedmodel" in capsys.readouterr().err
    with np.load(out) as z:
        preds = {k: z[k] for k in z.files}
    want = trained_run.model.predict(x, verbose=0)
    np.testing.assert_allclose(preds["output"], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(preds["output_class"], want.argmax(-1))


def test_predict_csv_prints_a_table(exported, trained_run, tmp_path, capsys):
    x = trained_run.data.test.x["image"][:3]
    header = ",".join(f"p{i}" for i in range(64))
    rows = "\n".join(",".join(str(v) for v in r.ravel()) for r in x)
    (tmp_path / "rows.csv").write_text(f"{header}\n{rows}\n")
    assert main(["predict", str(exported / "1"), "--input", str(tmp_path / "rows.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["row", "output_class", "output_probability", "output[0]"]
    assert len(lines) == 4  # header + 3 rows; class, probability and 10 scores fit
    classes = trained_run.model.predict(x, verbose=0).argmax(-1)
    header_cells = lines[0].split()
    col = header_cells.index("output_class")
    assert [int(line.split()[col]) for line in lines[1:]] == classes.tolist()


def test_predict_images_on_run_dir_and_export_agree(exported, trained_run, tmp_path, capsys):
    from PIL import Image

    x = trained_run.data.test.x["image"][:4]
    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(x):
        Image.fromarray(img[..., 0].astype("uint8"), mode="L").save(folder / f"{i}.png")
    results = {}
    for name, target in (("export", exported), ("run", trained_run.run_dir)):
        out = tmp_path / f"{name}.json"
        assert main(["predict", str(target), "-i", str(folder), "-o", str(out)]) == 0
        results[name] = np.asarray(json.loads(out.read_text())["output"])
    assert "keras" in capsys.readouterr().err  # the run directory goes through Keras
    run_out = json.loads((tmp_path / "run.json").read_text())
    assert run_out["output_class"] == np.argmax(run_out["output"], -1).tolist()
    np.testing.assert_allclose(results["export"], results["run"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(results["run"], trained_run.model.predict(x, verbose=0),
                               atol=1e-5)


def test_predict_names_the_bad_column_and_row(exported, tmp_path, capsys):
    header = ",".join(f"p{i}" for i in range(64))
    good = ",".join(["1"] * 64)
    bad = ",".join(["1"] * 10 + ["abc"] + ["1"] * 53)
    (tmp_path / "bad.csv").write_text(f"{header}\n{good}\n{bad}\n")
    assert main(["predict", str(exported), "--input", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "column 'p10' is not numeric; row 1 (line 3 of the file) has 'abc'" in err


def test_predict_rejects_wrong_shapes(exported, tmp_path, capsys):
    np.savez(tmp_path / "wrong.npz", x=np.zeros((2, 5), "float32"))
    assert main(["predict", str(exported), "--input", str(tmp_path / "wrong.npz")]) == 2
    err = capsys.readouterr().err
    assert "input 'image' expects rows of shape [8, 8, 1]" in err and "received shape [5]" in err


@pytest.mark.parametrize("damage, expected", [
    ("saved_model.pb", "saved_model.pb: corrupt or truncated (not a SavedModel protocol buffer)"),
    ("variables", "the SavedModel has no variables/ folder"),
    ("assets.extra/kspec.json", "assets.extra/kspec.json: cannot read the model's metadata "
                                "(JSONDecodeError"),
])
def test_predict_names_what_is_broken_in_an_export(exported, tmp_path, capsys, damage,
                                                   expected):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(exported / "1", broken)
    target = broken / damage
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.write_text("{ garbage")
    np.savez(tmp_path / "x.npz", image=np.zeros((2, 8, 8, 1), "float32"))
    assert main(["predict", str(broken), "--input", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken}") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_predict_on_a_run_names_the_classes(tmp_path, capsys):
    """A run records its class names (meta.json); predict adds the class and its name."""
    import kspec

    run = kspec.fit({
        "name": "iris_names", "seed": 0,
        "data": {"source": {"type": "bundled", "name": "iris"}, "splits": {"test": 0.2}},
        "model": {"inputs": [{"name": "features", "shape": [4]}],
                  "layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
        "training": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                     "epochs": 1, "verbose": 0}}, out=tmp_path / "runs")
    assert json.loads((run.run_dir / "meta.json").read_text())["class_names"] == [
        "setosa", "versicolor", "virginica"]
    x = run.data.test.x["features"][:3]
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["predict", str(run.run_dir), "--input", str(tmp_path / "x.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["row", "output_label", "output_class"]
    classes = run.model.predict(x, verbose=0).argmax(-1)
    names = np.array(["setosa", "versicolor", "virginica"])[classes]
    assert [line.split()[1] for line in lines[1:4]] == names.tolist()
