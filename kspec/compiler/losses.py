"""Losses by name (Keras's names and short aliases, plus kspec's own loss classes).

Tags say what targets and outputs a loss expects; the linter and the registry tests read
them: ``probability`` (predictions are probabilities unless ``from_logits``), ``binary`` /
``multiclass`` / ``sparse`` / ``onehot`` (label format), ``signed_labels`` (labels in
{-1, 1}), ``counts`` (positive predictions), ``distribution`` (rows sum to 1),
``feature_map`` (targets are feature maps), ``packed_groups`` (label + group columns).
"""

from __future__ import annotations

from typing import Any

from kspec.registry import LOSSES

_RED = ("reduction", "name")


def _keras(cls_name: str):
    def factory(**params):
        import keras

        return getattr(keras.losses, cls_name)(**params)

    return factory


def _reg(name, cls_name, doc, params=(), aliases=(), tags=()):
    LOSSES.register(name, _keras(cls_name), description=doc, params=(*params, *_RED),
                    aliases=aliases, tags=tags)


_XENT = ("from_logits", "label_smoothing")
_REGR = ("regression",)
_reg("mean_squared_error", "MeanSquaredError", "mean of squared errors (regression)",
     aliases=("mse",), tags=_REGR)
_reg("mean_absolute_error", "MeanAbsoluteError", "mean of absolute errors (robust regression)",
     aliases=("mae",), tags=_REGR)
_reg("mean_absolute_percentage_error", "MeanAbsolutePercentageError",
     "mean absolute error in percent of the target", aliases=("mape",), tags=_REGR)
_reg("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError",
     "squared error of log(1+y)", aliases=("msle",), tags=_REGR)
_reg("huber", "Huber", "quadratic below delta, linear above (robust regression)", ("delta",),
     aliases=("huber_loss",), tags=_REGR)
_reg("log_cosh", "LogCosh", "log(cosh(error)): smooth, robust regression loss",
     aliases=("logcosh",), tags=_REGR)
_reg("hinge", "Hinge", "max(0, 1 - y*f) for labels in {-1, 1} (SVM-style)",
     tags=("signed_labels", "binary"))
_reg("squared_hinge", "SquaredHinge", "squared hinge loss for labels in {-1, 1}",
     tags=("signed_labels", "binary"))
_reg("categorical_hinge", "CategoricalHinge", "multi-class hinge on one-hot labels",
     tags=("multiclass", "onehot"))
_reg("binary_crossentropy", "BinaryCrossentropy",
     "cross-entropy for 0/1 labels and a sigmoid (or logit) output", _XENT,
     aliases=("bce",), tags=("probability", "binary"))
_reg("categorical_crossentropy", "CategoricalCrossentropy",
     "cross-entropy for one-hot labels and a softmax (or logits) output", (*_XENT, "axis"),
     aliases=("cce",), tags=("probability", "multiclass", "onehot"))
_reg("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
     "cross-entropy for integer labels and a softmax (or logits) output",
     ("from_logits", "ignore_class", "axis"), aliases=("scce",),
     tags=("probability", "multiclass", "sparse"))
_reg("binary_focal_crossentropy", "BinaryFocalCrossentropy",
     "focal loss for 0/1 labels (down-weights easy examples)",
     (*_XENT, "gamma", "alpha", "apply_class_balancing"), tags=("probability", "binary"))
_reg("categorical_focal_crossentropy", "CategoricalFocalCrossentropy",
     "focal loss for one-hot labels", (*_XENT, "gamma", "alpha", "axis"),
     tags=("probability", "multiclass", "onehot"))
_reg("poisson", "Poisson", "Poisson negative log-likelihood y_pred - y*log(y_pred) (counts)",
     tags=("counts",))
_reg("cosine_similarity", "CosineSimilarity", "negative cosine similarity of y and y_pred",
     ("axis",), tags=_REGR)
_reg("kl_divergence", "KLDivergence", "Kullback-Leibler divergence of y_pred from y",
     aliases=("kld", "kullback_leibler_divergence"), tags=("distribution",))


@LOSSES.register("content", aliases=("content_loss",), tags=("feature_map",))
def content(name: str = "content_loss", reduction: str = "sum_over_batch_size"):
    """content loss: mean squared difference of feature maps (Gatys et al.)"""
    from kspec.components.losses import ContentLoss

    return ContentLoss(name=name, reduction=reduction)


@LOSSES.register("style", aliases=("style_loss", "gram"), tags=("feature_map",))
def style(name: str = "style_loss", reduction: str = "sum_over_batch_size"):
    """style loss: squared Gram-matrix distance / (4 N^2 M^2) (Gatys et al.)"""
    from kspec.components.losses import StyleLoss

    return StyleLoss(name=name, reduction=reduction)


@LOSSES.register("label_columns", aliases=("grouped",), tags=("packed_groups",))
def label_columns(loss: Any = "binary_crossentropy", name: str = "label_columns_loss"):
    """apply `loss` to targets packed with a group column (for the fairness metrics)"""
    from kspec.components.losses import LabelColumnsLoss

    inner = LOSSES.build(loss, "training.loss.loss")
    return LabelColumnsLoss(inner, name=name)
