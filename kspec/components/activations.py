"""Activation layers that are not plain functions: maxout (Goodfellow et al. 2013).

PReLU is Keras's own ``keras.layers.PReLU``; only maxout needs a class of its own.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kspec")
class Maxout(keras.layers.Layer):
    """Maxout: the maximum over groups of ``pieces`` consecutive features.

    A maxout unit is the maximum of k linear functions of the input. The layer before it
    computes ``outputs * pieces`` linear features; this layer keeps the maximum of each
    group of ``pieces`` consecutive ones, so a ``dense`` layer of ``units: 12`` followed by
    maxout with ``pieces: 3`` yields 4 features. Works on the last axis of any rank (on the
    channels of a conv layer too).

    Args:
        pieces: k, the number of linear pieces per unit (at least 2).

    Example:
        >>> import numpy as np
        >>> Maxout(pieces=2)(np.array([[1.0, 3.0, -2.0, -5.0]])).numpy().tolist()
        [[3.0, -2.0]]
    """

    def __init__(self, pieces: int = 2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(pieces, int) or isinstance(pieces, bool) or pieces < 2:
            raise ValueError(f"maxout needs an integer `pieces` of at least 2; received "
                             f"pieces={pieces!r}")
        self.pieces = pieces

    def build(self, input_shape):
        features = input_shape[-1]
        if features is not None and features % self.pieces:
            raise ValueError(
                f"maxout with pieces={self.pieces} needs a number of features divisible by "
                f"{self.pieces}, but the layer before it has {features}; give it "
                f"units/filters = outputs x {self.pieces}"
            )
        super().build(input_shape)

    def call(self, x):
        # Feature i*k + j is piece j of unit i, so the strided slice x[..., j::k] holds
        # piece j of every unit; no reshape, so unknown inner dimensions are fine.
        out = x[..., 0::self.pieces]
        for j in range(1, self.pieces):
            out = ops.maximum(out, x[..., j::self.pieces])
        return out

    def compute_output_shape(self, input_shape):
        last = input_shape[-1]
        return (*input_shape[:-1], None if last is None else last // self.pieces)

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces}
