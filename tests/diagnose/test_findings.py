"""kspec diagnose tells the known cases apart: vanishing gradients in a deep sigmoid stack but
not in a ReLU/He one, dead ReLUs forced by a large negative bias, zero initialization,
saturated and shrinking activations; exit status and JSON for scripts."""

from __future__ import annotations

import json
import math

import pytest

from kspec.cli import main
from kspec.diagnose import diagnose
from kspec.diagnose.findings import VANISHING_RATIO, find
from tests.diagnose.helpers import deep_spec


def codes(d) -> set[str]:
    return {f.code for f in d.findings}


def test_deep_sigmoid_vanishes_and_relu_he_does_not(table_data):
    sigmoid = diagnose(deep_spec("sigmoid", "glorot_uniform"), data=table_data)
    relu = diagnose(deep_spec("relu", "he_normal"), data=table_data)
    assert "vanishing_gradients" in codes(sigmoid)
    assert relu.findings == [] and relu.worst() is None
    first, last = sigmoid.layers[0]["grad_norm"], sigmoid.layers[-1]["grad_norm"]
    vanishing = next(f for f in sigmoid.findings if f.code == "vanishing_gradients")
    assert vanishing.value == pytest.approx(first / last) and vanishing.value < VANISHING_RATIO
    assert vanishing.severity == "warning" and "dense_0" in vanishing.message
    assert sigmoid.kind == "spec" and sigmoid.rows == 64  # 2 probe batches of 32


def test_large_negative_bias_kills_relu_units(table_data):
    d = diagnose(deep_spec("relu", "he_normal", depth=3, bias=-20.0), data=table_data)
    dead = next(f for f in d.findings if f.code == "dead_units")
    assert dead.severity == "error" and dead.value == 1.0
    assert "100% of relu units are dead" in dead.message
    assert all(r["dead"] == 1.0 for r in d.layers[:3])
    assert d.fails("error") and d.fails("warning")


def test_zero_initialization_is_flagged(table_data):
    with pytest.warns(Warning, match="symmetry is never broken"):  # the linter says so too
        d = diagnose(deep_spec("tanh", "zeros", depth=3), data=table_data)
    same = next(f for f in d.findings if f.code == "identical_units")
    assert same.severity == "error" and "symmetry is never broken" in same.message
    assert "dense_0, dense_1, dense_2" in same.message
    assert all(r["identical"] for r in d.layers[:3]) and not d.layers[3]["identical"]


def test_saturation_and_shrinking_activations(table_data):
    big = diagnose(deep_spec("tanh", {"type": "random_normal", "stddev": 2.0}, depth=4),
                   data=table_data)
    assert "saturated" in codes(big)
    small = diagnose(deep_spec("tanh", {"type": "random_normal", "stddev": 0.01}, depth=5),
                     data=table_data)
    shrink = next(f for f in small.findings if f.code == "shrinking_activations")
    stds = [r["std"] for r in small.layers[:5]]
    assert shrink.value == pytest.approx(stds[-1] / stds[0])
    assert "initializer too small" in shrink.message


def test_findings_from_rows():
    def row(name, grad, std=0.5, **extra):
        return {"layer": name, "grad_norm": grad, "weight_norm": 1.0, "std": std, "mean": 0.0,
                "activation": "relu", "dead": 0.0, "saturated": math.nan, "identical": False,
                "units": 4, **extra}

    exploding = find([row("a", 1e4), row("b", 1.0), row("out", 1.0)], outputs={"out"})
    assert [f.code for f in exploding] == ["exploding_gradients"]
    broken = find([row("a", math.nan), row("out", 1.0)], outputs={"out"})
    assert [(f.code, f.severity) for f in broken] == [("nonfinite", "error")]
    # A dead output layer is not a hidden layer's problem; a dead hidden one is.
    assert find([row("a", 1.0), row("out", 1.0, dead=1.0)], outputs={"out"}) == []
    assert [f.code for f in find([row("a", 1.0, dead=0.6), row("out", 1.0)],
                                 outputs={"out"})] == ["dead_units"]


def test_cli_exit_status_and_json(tmp_path, capsys):
    spec = tmp_path / "deep.json"
    spec.write_text(json.dumps({**deep_spec("sigmoid", "glorot_uniform", features=4),
                                "data": {"source": {"type": "bundled", "name": "iris"},
                                         "splits": {"test": 0.2}}}))
    plot = tmp_path / "d.png"
    assert main(["diagnose", str(spec), "--json", "--plot", str(plot)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["worst"] == "warning" and out["plot"] == str(plot) and plot.stat().st_size
    assert [f["code"] for f in out["findings"]] == ["vanishing_gradients"]
    assert len(out["layers"]) == 9 and out["layers"][0]["dead"] is None  # NaN -> null
    assert main(["diagnose", str(spec), "--fail-on", "error", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "vanishing" in text and "grad_norm" in text
    assert main(["diagnose", str(spec), "--set", "model.layers[0].activation=rleu"]) == 2
    assert "did you mean 'relu'" in capsys.readouterr().err
