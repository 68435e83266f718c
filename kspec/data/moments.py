"""Per-feature statistics accumulated over a stream of row blocks, in float64.

A :class:`Moments` holds, for every element of an example (a "feature"), the row count,
the mean, the sum of squared deviations (``m2``), the minimum and the maximum, and on request
the matrix of co-moments (``n`` times the covariance). Blocks are merged with the pairwise
update of Chan, Golub and LeVeque (1979), so the result does not depend on how the rows were
cut into blocks and stays accurate where ``E[x^2] - E[x]^2`` would cancel.

Every statistic kspec's preprocessing fits can be read off these numbers (per feature, per
channel or globally), and they follow an affine or linear map of the features exactly, so a
chain of fitted steps needs one pass over the data (:func:`kspec.data.preprocess.fit_streamed`).

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(3.0, 2.0, size=(1000, 4))
    >>> m = Moments((4,))
    >>> for block in np.array_split(x, 7):
    ...     m.update(block)
    >>> bool(np.allclose(m.reduce("feature")[1], x.mean(axis=0)))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Moments:
    """Mergeable float64 statistics of examples of shape ``shape``.

    Attributes:
        shape: one example's shape.
        n: rows seen.
        mean, m2, min, max: per feature (flattened), float64; ``min`` / ``max`` are None
            when unknown (after a whitening step: they cannot be derived).
        comoment: ``sum((x - mean)^T (x - mean))`` over rows (``d x d``), when asked for.
    """

    def __init__(self, shape: tuple[int, ...], covariance: bool = False) -> None:
        self.shape = tuple(int(s) for s in shape)
        d = int(np.prod(self.shape))
        self.n = 0
        self.mean = np.zeros(d)
        self.m2 = np.zeros(d)
        self.min: np.ndarray | None = np.full(d, np.inf)
        self.max: np.ndarray | None = np.full(d, -np.inf)
        self.comoment = np.zeros((d, d)) if covariance else None

    @property
    def features(self) -> int:
        return len(self.mean)

    def update(self, block: np.ndarray) -> None:
        """Add a block of rows ``(rows, *shape)``."""
        flat = np.asarray(block).reshape(len(block), -1)
        if not len(flat):
            return
        lo = flat.min(axis=0).astype("float64")
        hi = flat.max(axis=0).astype("float64")
        x = flat.astype("float64")
        mean = x.mean(axis=0)
        x -= mean
        m2 = np.einsum("ij,ij->j", x, x)
        co = x.T @ x if self.comoment is not None else None
        self._merge(len(flat), mean, m2, co, lo, hi)

    def merge(self, other: "Moments") -> None:
        """Add the rows another accumulator has seen (same shape)."""
        self._merge(other.n, other.mean, other.m2, other.comoment, other.min, other.max)

    def _merge(self, n: int, mean: np.ndarray, m2: np.ndarray, co: Any, lo: Any,
               hi: Any) -> None:
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean
        weight = self.n * n / total
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * weight
        if self.comoment is not None:
            self.comoment += co + np.outer(delta, delta) * weight
        if self.min is not None and lo is not None:
            self.min = np.minimum(self.min, lo)
            self.max = np.maximum(self.max, hi)
        self.n = total

    # -- statistics in the shapes preprocessing uses ---------------------------------------
    def reduce(self, per: str) -> tuple[int, np.ndarray, np.ndarray, Any, Any]:
        """``(count, mean, variance, min, max)`` per ``feature``, ``channel`` or ``global``.

        ``count`` is the number of values each statistic covers; the variance is the
        population variance (as NumPy's default ``std``); min and max are None when unknown.
        """
        groups = {"feature": self.features, "channel": self.shape[-1] if self.shape else 1,
                  "global": 1}[per]
        mean = self.mean.reshape(-1, groups)
        m2 = self.m2.reshape(-1, groups)
        k = mean.shape[0]  # features pooled into each statistic
        pooled = mean.mean(axis=0)
        pooled_m2 = m2.sum(axis=0) + self.n * ((mean - pooled) ** 2).sum(axis=0)
        count = self.n * k
        lo = hi = None
        if self.min is not None:
            lo = self.min.reshape(-1, groups).min(axis=0)
            hi = self.max.reshape(-1, groups).max(axis=0)
        return count, pooled, pooled_m2 / max(count, 1), lo, hi

    def covariance(self) -> np.ndarray:
        """The population covariance of the flattened features (``d x d``)."""
        if self.comoment is None:
            raise ValueError("these moments were accumulated without the covariance")
        return self.comoment / max(self.n, 1)

    # -- how the statistics follow a fitted step -------------------------------------------
    def affine(self, offset: Any, scale: Any, shift: float) -> "Moments":
        """The moments of ``(x - offset) * scale + shift`` (offset and scale broadcast
        against one example)."""
        o = np.broadcast_to(np.asarray(offset, "float64"), self.shape).ravel()
        s = np.broadcast_to(np.asarray(scale, "float64"), self.shape).ravel()
        out = Moments(self.shape)
        out.n = self.n
        out.mean = (self.mean - o) * s + shift
        out.m2 = self.m2 * s * s
        if self.min is not None:
            a, b = (self.min - o) * s + shift, (self.max - o) * s + shift
            out.min, out.max = np.minimum(a, b), np.maximum(a, b)
        else:
            out.min = out.max = None
        out.comoment = None if self.comoment is None else self.comoment * np.outer(s, s)
        return out

    def linear(self, mean: np.ndarray, matrix: np.ndarray,
               shape: tuple[int, ...]) -> "Moments":
        """The moments of ``(flatten(x) - mean) @ matrix`` reshaped to ``shape`` (whitening);
        its minimum and maximum cannot be derived and become unknown."""
        if self.comoment is None:
            raise ValueError("a linear map of the moments needs the covariance")
        out = Moments(shape)
        out.n = self.n
        out.mean = (self.mean - mean) @ matrix
        out.comoment = matrix.T @ self.comoment @ matrix
        out.m2 = np.diag(out.comoment).copy()
        out.min = out.max = None
        return out
