"""The in-memory containers every source produces: :class:`Split` and :class:`Data`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


@dataclass
class Split:
    """One split: features by input name, labels (one array, or one per output).

    ``groups`` holds each row's group id (``data.groups``) and follows its rows in
    :meth:`take`; after splitting it is also packed into ``y`` for the fairness metrics.

    Example:
        >>> s = Split({"x": np.zeros((4, 2))}, np.arange(4))
        >>> len(s.take(np.array([0, 2])))
        2
    """

    x: Arrays
    y: np.ndarray | Arrays | None
    sample_weight: np.ndarray | None = None
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))

    def take(self, index: np.ndarray) -> "Split":
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        y = {k: v[index] for k, v in self.y.items()} if isinstance(self.y, dict) else pick(self.y)
        return Split({k: v[index] for k, v in self.x.items()}, y, pick(self.sample_weight),
                     pick(self.groups))


@dataclass
class Data:
    """The splits a run trains, validates and tests on.

    Attributes:
        train, validation, test: the splits (validation and test may be None).
        source: a label for messages (file names, ``bundled:digits``, ``<arrays>``).
        meta: ``feature_names``, ``class_names`` when the source knows them.
    """

    # Each split is a Split, or a kspec.data.stream.StreamSplit for a streamed source.
    train: Split
    validation: Split | None = None
    test: Split | None = None
    source: str = "<arrays>"
    meta: dict[str, Any] = field(default_factory=dict)
    # The test features as read, kept when data.fit_test_separately rewrites data.test.x.
    raw_test_x: Arrays | None = field(default=None, repr=False)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        if getattr(self.train, "streamed", False):  # kspec.data.stream.StreamSplit
            return self.train.input_shapes()
        return {k: tuple(v.shape[1:]) for k, v in self.train.x.items()}

    def splits(self) -> dict[str, Split]:
        out = {"train": self.train, "validation": self.validation, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}
