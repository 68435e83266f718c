"""One pass over a streamed training split: float64 moments of every input, and the checks
in-memory data gets before training (NaN/inf in features and labels, labels against the
loss), with each bad row named by its key (``record 17 of data/a.tfrecord``).

Example:
    >>> moments = statistics_pass(spec, data.train, ["image"], set())  # doctest: +SKIP
    >>> moments["image"].reduce("global")[1]  # doctest: +SKIP
    array([33.6...])
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kspec.data.checks import check_labels, check_splits
from kspec.data.moments import Moments
from kspec.data.split import Split

# Rows per block of the pass: about as many values as the in-memory fit's blocks hold.
BLOCK_VALUES = 1 << 22
MAX_BLOCK_ROWS = 8192


def block_rows(split: Any, names: list[str]) -> int:
    """Rows read at a time: ~4M values of the widest input, 1 to 8,192 rows."""
    widest = max([int(np.prod(split.inputs[n][0])) for n in names] or [1])
    return int(min(MAX_BLOCK_ROWS, max(1, BLOCK_VALUES // max(1, widest))))


def statistics_pass(spec: Any, split: Any, names: list[str], covariance: set[str],
                    chains: dict[str, list[Callable]] | None = None) -> dict[str, Moments]:
    """The :class:`Moments` of each input in ``names`` over every row of ``split``.

    Args:
        spec: the spec (its loss and classes judge the labels).
        split: a :class:`~kspec.data.stream.StreamSplit`.
        names: the inputs to accumulate.
        covariance: the inputs whose co-moment matrix is needed (whitening).
        chains: per input, NumPy maps applied to each block first (the steps fitted
            before, when their moments cannot be carried forward).

    Raises:
        DataError: a non-finite value or a label the loss cannot take, naming its row.
    """
    chains = chains or {}
    moments: dict[str, Moments] = {}
    for element in split.chunks(block_rows(split, names), keys=True):
        keys = element.get("key", [])
        meta = {"row_names": keys}
        x = {k: v for k, v in element["x"].items()}
        chunk = Split(x, element.get("y"))
        check_splits({"all": chunk}, split.source, meta)
        check_labels(spec, {"all": chunk}, split.source, meta)
        for name in names:
            block = x[name]
            for fn in chains.get(name, ()):
                block = fn(block)
            if name not in moments:
                moments[name] = Moments(block.shape[1:], covariance=name in covariance)
            moments[name].update(block)
    return moments
