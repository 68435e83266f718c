"""tf.data pipelines: every row once per epoch, seeded reshuffles, weights and dict inputs."""

from __future__ import annotations

import numpy as np

from kspec.data.pipeline import to_dataset
from kspec.data.split import Split


def _epoch(ds):
    return [tuple(np.asarray(t) for t in batch) for batch in ds]


def test_batches_cover_every_row_once_in_order_without_shuffle():
    x = np.arange(23, dtype="float32").reshape(23, 1)
    ds = to_dataset(Split({"f": x}, np.arange(23)), 5)
    batches = _epoch(ds)
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches])[:, 0], np.arange(23))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(23))
    assert _epoch(ds)[0][0].tolist() == batches[0][0].tolist()  # cached epochs agree


def test_shuffle_is_seeded_reshuffled_each_epoch_and_keeps_pairs():
    x = np.arange(100, dtype="float32")[:, None]
    split = Split({"f": x}, np.arange(100) * 2, np.arange(100) / 100)
    ds = to_dataset(split, 32, shuffle=True, seed=7)
    first, second = _epoch(ds), _epoch(ds)
    order1 = np.concatenate([b[0] for b in first])[:, 0]
    order2 = np.concatenate([b[0] for b in second])[:, 0]
    assert sorted(order1.tolist()) == list(range(100))
    assert not np.array_equal(order1, order2)  # a new order every epoch
    again = np.concatenate([b[0] for b in _epoch(to_dataset(split, 32, shuffle=True,
                                                            seed=7))])[:, 0]
    np.testing.assert_array_equal(order1, again)  # same seed, same first epoch
    for xb, yb, wb in first:  # rows stay aligned with their labels and weights
        np.testing.assert_array_equal(yb, xb[:, 0] * 2)
        np.testing.assert_allclose(wb, xb[:, 0] / 100)


def test_dict_inputs_and_unlabelled_splits():
    split = Split({"a": np.zeros((10, 2)), "b": np.ones((10, 3, 3))}, None)
    (batch,) = list(to_dataset(split, 16))
    assert set(batch[0]) == {"a", "b"} and tuple(batch[0]["b"].shape) == (10, 3, 3)
    assert len(batch) == 1


def test_pass_counter_numbers_each_pass_and_fixes_its_order():
    from kspec.data.pipeline import epoch_variable

    split = Split({"f": np.arange(40, dtype="float32")[:, None]}, np.arange(40))
    counter = epoch_variable()
    ds = to_dataset(split, 8, shuffle=True, seed=3, epoch=counter)
    orders = [np.concatenate([b[0] for b in _epoch(ds)])[:, 0] for _ in range(3)]
    assert int(counter.numpy()) == 3  # each pass took one number
    assert not np.array_equal(orders[1], orders[2])
    counter.assign(2)  # a run resumed at epoch 2 sees the order pass 2 had
    np.testing.assert_array_equal(np.concatenate([b[0] for b in _epoch(ds)])[:, 0], orders[2])
