"""Metrics by name (Keras's names and short aliases, plus kspec's fairness and per-class
metrics, which stream: they keep counts across batches).

Tags say what targets a metric expects (the registry tests read them): ``regression``,
``binary``, ``multiclass``, ``sparse``, ``onehot``, ``packed_groups`` (label + group
columns, see ``kspec.components.metrics.pack_groups``).
"""

from __future__ import annotations

from kspec.registry import METRICS


def _keras(cls_name: str):
    def factory(**params):
        import keras

        return getattr(keras.metrics, cls_name)(**params)

    return factory


def _reg(name, cls_name, doc, params=(), aliases=(), tags=()):
    METRICS.register(name, _keras(cls_name), description=doc, params=(*params, "name", "dtype"),
                     aliases=aliases, tags=tags)


@METRICS.register("accuracy", aliases=("acc",), tags=("binary",))
def accuracy():
    """fraction correct; Keras picks binary, categorical or sparse from the loss"""
    return "accuracy"


_TH = ("threshold",)
_B, _R = ("binary",), ("regression",)
_reg("binary_accuracy", "BinaryAccuracy", "fraction correct for 0/1 labels", _TH, tags=_B)
_reg("categorical_accuracy", "CategoricalAccuracy", "fraction correct for one-hot labels",
     tags=("multiclass", "onehot"))
_reg("sparse_categorical_accuracy", "SparseCategoricalAccuracy",
     "fraction correct for integer labels", tags=("multiclass", "sparse"))
_reg("top_k_categorical_accuracy", "TopKCategoricalAccuracy",
     "label among the k best (one-hot labels)", ("k",), tags=("multiclass", "onehot"))
_reg("sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy",
     "label among the k best (integer labels)", ("k",), aliases=("top_k",),
     tags=("multiclass", "sparse"))
_reg("auc", "AUC", "area under the ROC (or PR) curve",
     ("num_thresholds", "curve", "summation_method", "multi_label", "from_logits"), tags=_B)
_reg("precision", "Precision", "true positives / predicted positives",
     ("thresholds", "top_k", "class_id"), tags=_B)
_reg("recall", "Recall", "true positives / actual positives", ("thresholds", "top_k", "class_id"),
     tags=_B)
_reg("f1_score", "F1Score", "harmonic mean of precision and recall",
     ("average", "threshold"), aliases=("f1",), tags=("multiclass", "onehot"))
_reg("mean_absolute_error", "MeanAbsoluteError", "mean absolute error", aliases=("mae",),
     tags=_R)
_reg("mean_squared_error", "MeanSquaredError", "mean squared error", aliases=("mse",), tags=_R)
_reg("root_mean_squared_error", "RootMeanSquaredError", "root of the mean squared error",
     aliases=("rmse",), tags=_R)
_reg("mean_absolute_percentage_error", "MeanAbsolutePercentageError",
     "mean absolute percentage error", aliases=("mape",), tags=_R)
_reg("r2_score", "R2Score", "coefficient of determination R^2", aliases=("r2",), tags=_R)
_reg("cosine_similarity", "CosineSimilarity", "mean cosine similarity", ("axis",), tags=_R)
_reg("poisson", "Poisson", "mean Poisson deviance term", tags=("counts",))
_reg("kl_divergence", "KLDivergence", "Kullback-Leibler divergence", aliases=("kld",),
     tags=("multiclass", "onehot"))
_reg("log_cosh_error", "LogCoshError", "mean log(cosh(error))", tags=_R)
_reg("binary_crossentropy", "BinaryCrossentropy", "mean binary cross-entropy",
     ("from_logits", "label_smoothing"), aliases=("bce",), tags=_B)
_reg("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
     "mean cross-entropy for integer labels", ("from_logits",), aliases=("scce",),
     tags=("multiclass", "sparse"))


@METRICS.register("subgroup_accuracy", aliases=("group_accuracy",), tags=("packed_groups",))
def subgroup_accuracy(group: int = 0, num_groups: int = 2, threshold: float = 0.5,
                      name: str | None = None):
    """accuracy over the rows of one group (targets packed as label, group)"""
    from kspec.components.metrics import SubgroupAccuracy

    return SubgroupAccuracy(group=group, num_groups=num_groups, threshold=threshold, name=name)


@METRICS.register("subgroup_accuracy_gap", aliases=("accuracy_gap",), tags=("packed_groups",))
def subgroup_accuracy_gap(num_groups: int = 2, threshold: float = 0.5,
                          name: str = "accuracy_gap"):
    """largest difference between two groups' accuracies (a fairness gap)"""
    from kspec.components.metrics import SubgroupAccuracyGap

    return SubgroupAccuracyGap(num_groups=num_groups, threshold=threshold, name=name)


@METRICS.register("statistical_parity", aliases=("demographic_parity",),
                  tags=("packed_groups",))
def statistical_parity(num_groups: int = 2, num_classes: int = 2, threshold: float = 0.5,
                       name: str = "statistical_parity"):
    """total-variation distance between groups' predicted-class rates (parity gap)"""
    from kspec.components.metrics import StatisticalParity

    return StatisticalParity(num_groups=num_groups, num_classes=num_classes,
                             threshold=threshold, name=name)


@METRICS.register("per_class_accuracy", aliases=("class_accuracy",),
                  tags=("multiclass", "sparse"))
def per_class_accuracy(class_id: int = 0, threshold: float = 0.5, name: str | None = None):
    """accuracy on the rows of one true class (that class's recall)"""
    from kspec.components.metrics import PerClassAccuracy

    return PerClassAccuracy(class_id=class_id, threshold=threshold, name=name)


@METRICS.register("balanced_accuracy", tags=("multiclass", "sparse"))
def balanced_accuracy(num_classes: int = 2, threshold: float = 0.5,
                      name: str = "balanced_accuracy"):
    """mean of the per-class accuracies (not fooled by a majority class)"""
    from kspec.components.metrics import BalancedAccuracy

    return BalancedAccuracy(num_classes=num_classes, threshold=threshold, name=name)
