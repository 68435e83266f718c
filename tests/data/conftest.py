"""Fixtures for the data tests: a spec factory and small tables written to tmp files."""

from __future__ import annotations

import numpy as np
import pytest

from kspec.validation import load_spec


def _spec(data=None, inputs=None, layers=None, loss="sparse_categorical_crossentropy",
          units=3, **top):
    inputs = inputs or [{"name": "features"}]
    head = [{"type": "dense", "units": units, "activation": "softmax"}]
    if len(inputs) > 1:  # graph form: flatten each input, concatenate, one head
        model = {"inputs": inputs, "blocks": [
            *({"name": f"flat_{i['name']}", "inputs": [i["name"]], "layers": [{"type": "flatten"}]}
              for i in inputs),
            {"name": "head", "inputs": [f"flat_{i['name']}" for i in inputs],
             "merge": "concatenate", "layers": layers or head}]}
    else:
        model = {"inputs": inputs, "layers": layers or [{"type": "flatten"}, *head]}
    raw = {
        "name": "t",
        "seed": top.pop("seed", 0),
        "data": data or {},
        "model": model,
        "training": {"optimizer": "adam", "loss": loss, "batch_size": 32, "epochs": 1,
                     "verbose": 0},
    }
    raw.update(top)
    return load_spec(raw)


@pytest.fixture
def make_spec():
    """``make_spec(data={...}, inputs=[...], layers=[...], loss=..., units=...)``."""
    return _spec


@pytest.fixture
def table(tmp_path):
    """A 120-row CSV: four numeric columns, a string label with three classes."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)).round(4), columns=["a", "b", "c", "d"])
    frame["kind"] = np.array(["cat", "dog", "eel"])[np.arange(120) % 3]
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path, frame
