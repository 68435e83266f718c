"""Loss classes: content and style losses (Gatys et al. 2016) and losses on packed
``(label, group)`` targets for the fairness metrics."""

from __future__ import annotations

import keras
from keras import ops


def _flatten_maps(x):
    """(batch, *spatial, channels) -> (batch, positions, channels)."""
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], -1, shape[-1]))


def gram_matrix(features):
    """Gram matrices ``G[b, c, d] = sum over positions of F[b, p, c] * F[b, p, d]``.

    Args:
        features: feature maps of shape ``(batch, height, width, channels)`` (any number of
            spatial axes, channels last).

    Returns:
        A tensor of shape ``(batch, channels, channels)``.

    Example:
        >>> import numpy as np
        >>> gram_matrix(np.ones((1, 2, 2, 1), "float32")).numpy().tolist()
        [[[4.0]]]
    """
    flat = _flatten_maps(ops.convert_to_tensor(features))
    return ops.einsum("bpc,bpd->bcd", flat, flat)


@keras.saving.register_keras_serializable(package="kspec")
class ContentLoss(keras.losses.Loss):
    """Content loss: mean squared difference of feature maps, per example.

    ``y_true`` holds the content image's features at the same layer as ``y_pred``.

    Example:
        >>> import numpy as np
        >>> float(ContentLoss()(np.zeros((1, 2, 2, 1)), np.ones((1, 2, 2, 1))))
        1.0
    """

    def __init__(self, name="content_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        axes = tuple(range(1, len(y_pred.shape)))
        return ops.mean(ops.square(y_pred - y_true), axis=axes)


@keras.saving.register_keras_serializable(package="kspec")
class StyleLoss(keras.losses.Loss):
    """Style loss: squared distance of Gram matrices, normalized as in Gatys et al.

    For one layer with N channels and M positions (height x width),
    ``E = sum((G(y_pred) - G(y_true))**2) / (4 N**2 M**2)``, per example. ``y_true``
    holds the style image's feature maps at the same layer.

    Example:
        >>> import numpy as np
        >>> float(StyleLoss()(np.zeros((1, 1, 1, 1)), np.ones((1, 1, 1, 1))))
        0.25
    """

    def __init__(self, name="style_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        flat = _flatten_maps(y_pred)
        n = ops.cast(ops.shape(flat)[2], y_pred.dtype)
        m = ops.cast(ops.shape(flat)[1], y_pred.dtype)
        diff = gram_matrix(y_pred) - gram_matrix(y_true)
        return ops.sum(ops.square(diff), axis=(1, 2)) / (4.0 * n**2 * m**2)


@keras.saving.register_keras_serializable(package="kspec")
class LabelColumnsLoss(keras.losses.Loss):
    """A loss applied to the label columns of packed ``(label, group)`` targets.

    The fairness metrics read the group of each example from the last column of
    ``y_true`` (see :func:`kspec.components.metrics.pack_groups`); this wrapper drops that
    column before the wrapped loss sees the targets.

    Args:
        loss: the wrapped loss (a ``keras.losses.Loss``, or its serialized config).

    Example:
        >>> import numpy as np
        >>> inner = keras.losses.BinaryCrossentropy()
        >>> y = np.array([[1.0, 0.0], [0.0, 1.0]])  # label, group
        >>> p = np.array([[0.9], [0.2]])
        >>> round(float(LabelColumnsLoss(inner)(y, p)), 4) == round(float(inner(y[:, :1], p)), 4)
        True
    """

    def __init__(self, loss, name="label_columns_loss", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        # A private copy (the caller's object keeps its reduction): the wrapped loss
        # returns per-example values and this wrapper reduces them once.
        config = loss if isinstance(loss, dict) else keras.losses.serialize(loss)
        self.loss = keras.losses.deserialize(config)
        if isinstance(self.loss, keras.losses.Loss):
            self.loss.reduction = None

    def call(self, y_true, y_pred):
        y_true = ops.convert_to_tensor(y_true)
        return self.loss(y_true[..., :-1], y_pred)

    def get_config(self):
        return {**super().get_config(), "loss": keras.losses.serialize(self.loss)}
