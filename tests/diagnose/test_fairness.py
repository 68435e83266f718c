"""Plain metrics beside the group-aware ones, and the subgroup table cut by group and by
(label x group) cell, consistent with the fairness metrics."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kspec
from kspec.components.metrics import (
    LabelColumnsMetric,
    StatisticalParity,
    SubgroupAccuracyGap,
    for_packed_targets,
    pack_groups,
)
from kspec.diagnose import subgroup_table
from kspec.diagnose.fairness import table_of

FAIR_SPEC = {
    "name": "fair", "seed": 2,
    "data": {"splits": {"validation": 0.2, "test": 0.3}, "groups": {"feature": 0,
                                                                  "bins": [0.0]}},
    "model": {"inputs": [{"name": "features", "shape": [4]}],
              "layers": [{"type": "dense", "units": 8, "activation": "relu"},
                         {"type": "dense", "units": 1, "activation": "sigmoid"}]},
    "training": {"loss": {"type": "label_columns", "loss": "binary_crossentropy"},
                 "metrics": ["accuracy", "auc", "subgroup_accuracy_gap",
                             "statistical_parity"],
                 "optimizer": {"type": "adam", "learning_rate": 0.02}, "epochs": 3,
                 "batch_size": 32, "verbose": 0},
}


def test_plain_metrics_beside_group_metrics(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 4)).astype("float32")
    y = (x[:, 1] + 0.5 * x[:, 0] > 0).astype("int64")
    run = kspec.fit(FAIR_SPEC, data=(x, y), out=tmp_path)
    test = run.data.test
    labels = test.y[:, 0]  # the packed targets: label, then group
    predicted = (run.model.predict(test.x["features"], verbose=0)[:, 0] > 0.5).astype(int)
    assert run.test_metrics["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert 0.0 <= run.test_metrics["auc"] <= 1.0
    table = subgroup_table(run)
    assert table.accuracy == pytest.approx(run.test_metrics["accuracy"])
    assert table.accuracy_gap == pytest.approx(run.test_metrics["accuracy_gap"], abs=1e-6)
    assert table.parity == pytest.approx(run.test_metrics["statistical_parity"], abs=1e-6)
    assert sum(c["share"] for c in table.cells) == pytest.approx(1.0)
    assert table.group_names == ["feature 0 < 0", "feature 0 >= 0"]
    # The saved model, with its wrapped metrics, loads in safe mode and evaluates alike.
    loaded = keras.saving.load_model(run.run_dir / "model.keras", safe_mode=True)
    again = loaded.evaluate(test.x["features"], test.y, verbose=0, return_dict=True)
    assert again["accuracy"] == pytest.approx(run.test_metrics["accuracy"])


def test_wrapped_metrics_skip_the_group_column():
    y = np.array([1, 0, 1, 1, 0], "float32")
    packed = pack_groups(y, [0, 1, 1, 0, 1])
    p = np.array([[0.9], [0.6], [0.2], [0.7], [0.1]], "float32")
    acc = for_packed_targets("accuracy", units=1)
    acc.update_state(packed, p)
    assert isinstance(acc.metric, keras.metrics.BinaryAccuracy) and acc.name == "accuracy"
    assert float(acc.result()) == pytest.approx(0.6)
    assert isinstance(for_packed_targets("accuracy", 3).metric,
                      keras.metrics.SparseCategoricalAccuracy)
    assert isinstance(for_packed_targets("acc", 3, onehot=True).metric,
                      keras.metrics.CategoricalAccuracy)
    gap = SubgroupAccuracyGap()
    assert for_packed_targets(gap, 1) is gap  # group-aware metrics read the column
    auc = for_packed_targets(keras.metrics.AUC(name="auc"), 1)
    auc.update_state(packed, p)
    plain = keras.metrics.AUC()
    plain.update_state(y, p)
    assert isinstance(auc, LabelColumnsMetric) and float(auc.result()) == float(plain.result())
    clone = LabelColumnsMetric.from_config(auc.get_config())
    assert clone.name == "auc" and isinstance(clone.metric, keras.metrics.AUC)


def test_table_matches_the_fairness_metrics():
    rng = np.random.default_rng(0)
    t, p, g = rng.integers(0, 2, 400), rng.integers(0, 2, 400), rng.integers(0, 3, 400)
    table = table_of(t, p, g)
    gap, parity = SubgroupAccuracyGap(num_groups=3), StatisticalParity(num_groups=3)
    targets, probs = pack_groups(t, g), p[:, None].astype("float32")
    gap.update_state(targets, probs)
    parity.update_state(targets, probs)
    assert table.accuracy_gap == pytest.approx(float(gap.result()), abs=1e-6)
    assert table.parity == pytest.approx(float(parity.result()), abs=1e-6)
    cell = next(c for c in table.cells if c["label"] == 1 and c["group"] == 2)
    mask = (t == 1) & (g == 2)
    assert cell["count"] == mask.sum() and cell["accuracy"] == pytest.approx(
        np.mean(p[mask] == 1))
    assert len(table.cells) == 6 and len(table.groups) == 3
