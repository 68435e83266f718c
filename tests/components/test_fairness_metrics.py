"""Fairness and per-class metrics against a hand-computed table, streamed over batches.

The table: 100 people in two groups; joint probabilities of (group, prediction correct):
group 0 right 0.47, group 0 wrong 0.02, group 1 right 0.45, group 1 wrong 0.06.

    group 0 (49): 30 label 1 predicted 1, 17 label 0 predicted 0, 2 label 0 predicted 1
    group 1 (51): 20 label 1 predicted 1, 25 label 0 predicted 0, 6 label 1 predicted 0

accuracy: group 0 47/49, group 1 45/51, gap 47/49 - 45/51.
positive-prediction rate: group 0 32/49, group 1 20/51; parity gap 32/49 - 20/51.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kspec.components import (  # noqa: E402
    BalancedAccuracy,
    PerClassAccuracy,
    StatisticalParity,
    SubgroupAccuracy,
    SubgroupAccuracyGap,
    pack_groups,
)
from kspec.errors import DataError  # noqa: E402

ROWS = ([(0, 1, 1)] * 30 + [(0, 0, 0)] * 17 + [(0, 0, 1)] * 2
        + [(1, 1, 1)] * 20 + [(1, 0, 0)] * 25 + [(1, 1, 0)] * 6)  # (group, label, prediction)
ACC = {0: 47 / 49, 1: 45 / 51}
GAP = 47 / 49 - 45 / 51
PARITY = 32 / 49 - 20 / 51


def _table(seed=0):
    rows = np.array(ROWS)[np.random.default_rng(seed).permutation(len(ROWS))]
    y = pack_groups(rows[:, 1], rows[:, 0])
    # Predicted probabilities on either side of the 0.5 threshold.
    p = np.where(rows[:, 2] == 1, 0.8, 0.3).astype("float32")[:, None]
    return y, p


def test_table_matches_the_joint_probabilities():
    counts = {}
    for g, label, pred in ROWS:
        counts[(g, label == pred)] = counts.get((g, label == pred), 0) + 1
    assert counts == {(0, True): 47, (0, False): 2, (1, True): 45, (1, False): 6}


def _stream(metric, y, p, batch=7):
    for i in range(0, len(y), batch):  # 15 batches, the last one of 2 rows
        metric.update_state(y[i:i + batch], p[i:i + batch])
    return float(metric.result())


@pytest.mark.parametrize("group", [0, 1])
def test_subgroup_accuracy_streams(group):
    y, p = _table()
    assert _stream(SubgroupAccuracy(group=group), y, p) == pytest.approx(ACC[group], abs=1e-6)


def test_gap_and_parity_stream_and_differ_from_batch_averages():
    y, p = _table()
    gap, parity = SubgroupAccuracyGap(), StatisticalParity()
    assert _stream(gap, y, p) == pytest.approx(GAP, abs=1e-6)
    assert _stream(parity, y, p) == pytest.approx(PARITY, abs=1e-6)
    # What a metric that averaged per-batch values would report: clearly different.
    per_batch = []
    for i in range(0, len(y), 7):
        m = StatisticalParity()
        m.update_state(y[i:i + 7], p[i:i + 7])
        per_batch.append(float(m.result()))
    assert abs(np.mean(per_batch) - PARITY) > 0.05
    gap.reset_state()
    assert float(gap.result()) == 0.0


def test_sample_weights_count_rows_that_many_times():
    y, p = _table()
    w = np.where(y[:, 1] == 1, 2.0, 1.0)  # every group-1 row twice
    doubled_y = np.concatenate([y, y[y[:, 1] == 1]])
    doubled_p = np.concatenate([p, p[y[:, 1] == 1]])
    a, b = StatisticalParity(), StatisticalParity()
    a.update_state(y, p, sample_weight=w)
    b.update_state(doubled_y, doubled_p)
    assert float(a.result()) == pytest.approx(float(b.result()), abs=1e-6)


def test_statistical_parity_is_total_variation_for_several_classes():
    # Three predicted classes; group 0 predicts (a, a, b, c), group 1 (a, b, b, b).
    y = pack_groups(np.zeros(8), [0, 0, 0, 0, 1, 1, 1, 1])
    p = np.eye(3, dtype="float32")[[0, 0, 1, 2, 0, 1, 1, 1]]
    m = StatisticalParity(num_classes=3)
    m.update_state(y, p)
    # rates (.5, .25, .25) vs (.25, .75, 0): TV = 0.5 * (.25 + .5 + .25)
    assert float(m.result()) == pytest.approx(0.5)


def test_three_groups_gap_is_max_minus_min():
    y = pack_groups([1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 2, 2])
    p = np.array([[0.9], [0.9], [0.9], [0.1], [0.1], [0.1]], "float32")
    m = SubgroupAccuracyGap(num_groups=3)
    m.update_state(y, p)
    assert float(m.result()) == pytest.approx(1.0)


def test_per_class_accuracy_sparse_and_one_hot_agree():
    labels = np.array([0, 1, 2, 2, 2, 1, 0, 2])
    preds = np.eye(3, dtype="float32")[[0, 2, 2, 1, 2, 1, 1, 0]]
    for class_id, expected in ((0, 1 / 2), (1, 1 / 2), (2, 2 / 4)):
        sparse, onehot = PerClassAccuracy(class_id), PerClassAccuracy(class_id)
        _stream(sparse, labels, preds, batch=3)
        _stream(onehot, np.eye(3)[labels], preds, batch=3)
        assert float(sparse.result()) == pytest.approx(expected)
        assert float(onehot.result()) == pytest.approx(expected)


def test_balanced_accuracy_is_the_mean_of_per_class_accuracies():
    labels = np.array([0, 1, 2, 2, 2, 1, 0, 2])
    preds = np.eye(3, dtype="float32")[[0, 2, 2, 1, 2, 1, 1, 0]]
    m = BalancedAccuracy(num_classes=3)
    _stream(m, labels, preds, batch=3)
    assert float(m.result()) == pytest.approx((1 / 2 + 1 / 2 + 2 / 4) / 3)
    majority = BalancedAccuracy()  # 9 of 10 rows are class 0; always predict class 0
    majority.update_state(np.r_[np.zeros(9), 1], np.zeros((10, 1), "float32"))
    assert float(majority.result()) == pytest.approx(0.5)


def test_metrics_stream_inside_keras_evaluate_and_round_trip(tmp_path):
    """A model that outputs its input: Keras's own evaluate loop (graph mode, batches of 7)
    must give the hand-computed table values, also after a safe-mode reload."""
    from kspec.compiler.model import build_model
    from kspec.train.compile import compile_model
    from kspec.validation import load_spec

    raw = {
        "model": {"inputs": [{"name": "p", "shape": [1]}],
                  "layers": [{"type": "activation", "activation": "linear"}]},
        "training": {"loss": {"type": "label_columns", "loss": "bce"},
                     "metrics": [{"type": "subgroup_accuracy", "group": 0},
                                 {"type": "subgroup_accuracy", "group": 1},
                                 "subgroup_accuracy_gap", "statistical_parity"]},
    }
    # The lint sees the wrapped loss and the linear output (here the input is already a
    # probability, so the warning is expected).
    with pytest.warns(UserWarning, match=r"training.loss.loss: 'binary_crossentropy' expects"):
        spec = load_spec(raw)
    model = build_model(spec)
    compile_model(model, spec)
    y, p = _table(seed=3)
    expected = {"group_0_accuracy": ACC[0], "group_1_accuracy": ACC[1], "accuracy_gap": GAP,
                "statistical_parity": PARITY}
    got = model.evaluate({"p": p}, y, batch_size=7, verbose=0, return_dict=True)
    for key, value in expected.items():
        assert got.get(key) == pytest.approx(value, abs=1e-5), (key, got)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    again = loaded.evaluate({"p": p}, y, batch_size=7, verbose=0, return_dict=True)
    for key, value in expected.items():
        assert again[key] == pytest.approx(value, abs=1e-5), key


def test_pack_groups_checks_the_data():
    with pytest.raises(DataError, match="3 labels but 2 group ids"):
        pack_groups([1, 0, 1], [0, 1])
    with pytest.raises(DataError, match="row 1 has group -1"):
        pack_groups([1, 0], [0, -1])
    with pytest.raises(DataError, match="integers"):
        pack_groups([1, 0], ["a", "b"])
