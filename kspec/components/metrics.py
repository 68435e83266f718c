"""Fairness and per-class metrics that stream over batches.

Group membership travels with the targets: ``y_true`` has the label column(s) first and the
group id (an integer ``0 .. num_groups-1``) as its LAST column. :func:`pack_groups` builds
such targets; train with the ``label_columns`` loss wrapper so the loss ignores the group.
Each metric keeps running counts (per group, per class) in variables and computes its value
from the totals, so the result over several batches equals the result over all the rows at
once, never an average of per-batch values.

Predicted classes: one output unit is thresholded (``threshold``, default 0.5: use 0.0 for
logits); several units are arg-maxed. True classes: one label column is rounded; several
(one-hot) are arg-maxed.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


def pack_groups(labels: Any, groups: Any, source: str = "<arrays>") -> np.ndarray:
    """Targets for the fairness metrics: label column(s) followed by the group id.

    Args:
        labels: shape ``(n,)`` (binary or integer labels) or ``(n, k)`` (one-hot).
        groups: integer group ids, shape ``(n,)``.
        source: named in errors.

    Raises:
        DataError: lengths differ, or a group id is not a non-negative integer.

    Example:
        >>> pack_groups([1, 0], [0, 1]).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    from kspec.errors import DataError

    y = np.asarray(labels, dtype="float32")
    g = np.asarray(groups)
    y = y[:, None] if y.ndim == 1 else y
    if len(y) != len(g):
        raise DataError(f"{source}: {len(y)} labels but {len(g)} group ids")
    bad = np.flatnonzero((g != np.round(g)) | (g < 0)) if g.dtype.kind in "fiu" else [0]
    if len(bad):
        raise DataError(f"{source}: group ids must be integers 0, 1, ...; row {bad[0]} has "
                        f"group {g.tolist()[bad[0]]!r}")
    return np.concatenate([y, g.astype("float32")[:, None]], axis=1)


def _classes(values, threshold):
    """Class index per row: threshold one column, arg-max several."""
    values = ops.convert_to_tensor(values)
    if len(values.shape) == 1:
        values = values[:, None]
    if values.shape[-1] == 1:
        return ops.cast(values[..., 0] > threshold, "int32")
    return ops.cast(ops.argmax(values, axis=-1), "int32")


def _true_classes(labels):
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 1:
        labels = labels[:, None]
    if labels.shape[-1] == 1:
        return ops.cast(ops.round(labels[..., 0]), "int32")
    return ops.cast(ops.argmax(labels, axis=-1), "int32")


def _weights(sample_weight, like):
    if sample_weight is None:
        return ops.ones_like(like)
    w = ops.cast(sample_weight, like.dtype)
    return ops.reshape(w, ops.shape(like))


class _GroupCounts(keras.metrics.Metric):
    """Running per-group counts of rows and of correct predictions."""

    def __init__(self, num_groups: int = 2, threshold: float = 0.5, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(num_groups, int) or num_groups < 2:
            raise ValueError(f"num_groups must be an integer of at least 2; received "
                             f"num_groups={num_groups!r}")
        self.num_groups = num_groups
        self.threshold = threshold
        self.correct = self.add_variable((num_groups,), "zeros", name="correct")
        self.total = self.add_variable((num_groups,), "zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        group = ops.cast(y_true[..., -1], "int32")
        hit = ops.cast(ops.equal(_true_classes(y_true[..., :-1]),
                                 _classes(y_pred, self.threshold)), self.dtype)
        w = _weights(sample_weight, hit)
        onehot = ops.one_hot(group, self.num_groups, dtype=self.dtype)  # ids out of range: 0
        self.correct.assign_add(ops.sum(onehot * (hit * w)[:, None], axis=0))
        self.total.assign_add(ops.sum(onehot * w[:, None], axis=0))

    def group_accuracy(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        for v in (self.correct, self.total):
            v.assign(ops.zeros_like(v))

    def get_config(self):
        return {**super().get_config(), "num_groups": self.num_groups,
                "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="kspec")
class SubgroupAccuracy(_GroupCounts):
    """Accuracy over the rows of one group (``group``), from packed targets.

    Named ``group_<g>_accuracy`` by default (no trailing number, which Keras and kspec use
    to tell apart several instances of one metric).

    Example:
        >>> m = SubgroupAccuracy(group=1)
        >>> m.update_state([[1, 0], [1, 1], [0, 1]], [[0.9], [0.2], [0.1]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, group: int = 0, num_groups: int = 2, threshold: float = 0.5,
                 name=None, dtype=None):
        if not isinstance(group, int) or not 0 <= group < num_groups:
            raise ValueError(f"group must be an integer in [0, {num_groups}); received "
                             f"group={group!r}")
        super().__init__(num_groups, threshold, name=name or f"group_{group}_accuracy",
                         dtype=dtype)
        self.group = group

    def result(self):
        return self.group_accuracy()[self.group]

    def get_config(self):
        return {**super().get_config(), "group": self.group}


@keras.saving.register_keras_serializable(package="kspec")
class SubgroupAccuracyGap(_GroupCounts):
    """Largest difference between the accuracies of two groups (groups seen so far).

    Example:
        >>> m = SubgroupAccuracyGap()
        >>> m.update_state([[1, 0], [1, 1], [0, 1]], [[0.9], [0.2], [0.1]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, num_groups: int = 2, threshold: float = 0.5, name="accuracy_gap",
                 dtype=None):
        super().__init__(num_groups, threshold, name=name, dtype=dtype)

    def result(self):
        acc = self.group_accuracy()
        seen = self.total > 0
        hi = ops.max(ops.where(seen, acc, -1.0))
        lo = ops.min(ops.where(seen, acc, 2.0))
        return ops.maximum(hi - lo, 0.0)


@keras.saving.register_keras_serializable(package="kspec")
class StatisticalParity(keras.metrics.Metric):
    """Statistical parity gap: total-variation distance between groups' prediction rates.

    For each group the distribution of predicted classes is counted; the result is the
    largest total-variation distance ``0.5 * sum_c |P(c | a) - P(c | b)|`` over pairs of
    groups seen so far. For a binary classifier this is the difference of the groups'
    positive-prediction rates. Labels are not used (only the group column).

    Example:
        >>> m = StatisticalParity()
        >>> m.update_state([[0, 0], [0, 0], [0, 1], [0, 1]], [[0.9], [0.1], [0.9], [0.8]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, num_groups: int = 2, num_classes: int = 2, threshold: float = 0.5,
                 name="statistical_parity", dtype=None):
        super().__init__(name=name, dtype=dtype)
        for key, value in (("num_groups", num_groups), ("num_classes", num_classes)):
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"{key} must be an integer of at least 2; received "
                                 f"{key}={value!r}")
        self.num_groups, self.num_classes, self.threshold = num_groups, num_classes, threshold
        self.counts = self.add_variable((num_groups, num_classes), "zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        group = ops.one_hot(ops.cast(y_true[..., -1], "int32"), self.num_groups,
                            dtype=self.dtype)
        pred = ops.one_hot(_classes(y_pred, self.threshold), self.num_classes,
                           dtype=self.dtype)
        w = _weights(sample_weight, group[:, 0])
        self.counts.assign_add(ops.einsum("bg,bc->gc", group * w[:, None], pred))

    def result(self):
        totals = ops.sum(self.counts, axis=1)
        rates = ops.divide_no_nan(self.counts, totals[:, None])
        tv = 0.5 * ops.sum(ops.abs(rates[:, None, :] - rates[None, :, :]), axis=-1)
        seen = ops.cast(totals > 0, self.dtype)
        return ops.max(tv * seen[:, None] * seen[None, :])

    def reset_state(self):
        self.counts.assign(ops.zeros_like(self.counts))

    def get_config(self):
        return {**super().get_config(), "num_groups": self.num_groups,
                "num_classes": self.num_classes, "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="kspec")
class PerClassAccuracy(keras.metrics.Metric):
    """Accuracy on the rows whose true class is ``class_id`` (that class's recall).

    Labels may be integers (one column) or one-hot; predictions one unit (thresholded) or
    several (arg-max).

    Example:
        >>> m = PerClassAccuracy(class_id=2)
        >>> m.update_state([2, 2, 1], [[0, 0, 1], [0, 1, 0], [0, 1, 0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, class_id: int = 0, threshold: float = 0.5, name=None, dtype=None):
        if not isinstance(class_id, int) or class_id < 0:
            raise ValueError(f"class_id must be a non-negative integer; received "
                             f"class_id={class_id!r}")
        super().__init__(name=name or f"class_{class_id}_accuracy", dtype=dtype)
        self.class_id, self.threshold = class_id, threshold
        self.correct = self.add_variable((), "zeros", name="correct")
        self.total = self.add_variable((), "zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true = _true_classes(y_true)
        is_class = ops.cast(ops.equal(true, self.class_id), self.dtype)
        hit = ops.cast(ops.equal(_classes(y_pred, self.threshold), true), self.dtype)
        w = _weights(sample_weight, is_class)
        self.correct.assign_add(ops.sum(is_class * hit * w))
        self.total.assign_add(ops.sum(is_class * w))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        for v in (self.correct, self.total):
            v.assign(ops.zeros_like(v))

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id, "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="kspec")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean of the per-class accuracies (recalls) over the classes seen so far.

    Unlike accuracy it does not reward predicting the majority class: on a 90/10 split,
    always answering the majority scores 0.9 accuracy but 0.5 balanced accuracy.

    Example:
        >>> m = BalancedAccuracy(num_classes=2)
        >>> m.update_state([0, 0, 0, 1], [[0.1], [0.2], [0.3], [0.4]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, num_classes: int = 2, threshold: float = 0.5,
                 name="balanced_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer of at least 2; received "
                             f"num_classes={num_classes!r}")
        self.num_classes, self.threshold = num_classes, threshold
        self.correct = self.add_variable((num_classes,), "zeros", name="correct")
        self.total = self.add_variable((num_classes,), "zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true = _true_classes(y_true)
        onehot = ops.one_hot(true, self.num_classes, dtype=self.dtype)
        hit = ops.cast(ops.equal(_classes(y_pred, self.threshold), true), self.dtype)
        w = _weights(sample_weight, hit)
        self.correct.assign_add(ops.sum(onehot * (hit * w)[:, None], axis=0))
        self.total.assign_add(ops.sum(onehot * w[:, None], axis=0))

    def result(self):
        seen = ops.cast(self.total > 0, self.dtype)
        recall = ops.divide_no_nan(self.correct, self.total)
        return ops.divide_no_nan(ops.sum(recall * seen), ops.sum(seen))

    def reset_state(self):
        for v in (self.correct, self.total):
            v.assign(ops.zeros_like(v))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "threshold": self.threshold}


# Group-aware metrics read the packed group column themselves; every other metric on packed
# targets is wrapped so that it sees the label columns only.
GROUP_AWARE = (_GroupCounts, StatisticalParity)


@keras.saving.register_keras_serializable(package="kspec")
class LabelColumnsMetric(keras.metrics.Metric):
    """A plain metric on packed ``(label, group)`` targets: drops the group column.

    With ``data.groups`` the targets end with each row's group id (for the fairness
    metrics); ``accuracy``, ``auc`` and the other plain metrics listed beside them are
    wrapped in this class, so they score the label columns only. The wrapper takes the
    wrapped metric's name, so the history says ``accuracy``, not ``label_columns_metric``.

    Args:
        metric: the wrapped metric (a ``keras.metrics.Metric`` or its serialized config).

    Example:
        >>> m = LabelColumnsMetric(keras.metrics.BinaryAccuracy())
        >>> m.update_state([[1, 0], [1, 1], [0, 1]], [[0.9], [0.2], [0.1]])  # label, group
        >>> round(float(m.result()), 4)
        0.6667
    """

    def __init__(self, metric, name=None, dtype=None):
        inner = metric if isinstance(metric, keras.metrics.Metric) else (
            keras.metrics.deserialize(metric))
        super().__init__(name=name or inner.name, dtype=dtype or inner.dtype)
        self.metric = inner

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        return self.metric.update_state(y_true[..., :-1], y_pred, sample_weight=sample_weight)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype,
                "metric": keras.metrics.serialize(self.metric)}


def for_packed_targets(metric: Any, units: int | None, onehot: bool = False,
                       from_logits: bool = False) -> Any:
    """``metric`` as it should run on packed ``(label, group)`` targets.

    Group-aware metrics are returned as they are; ``"accuracy"`` (which Keras resolves from
    the loss) becomes the accuracy that fits the output: binary for one unit, categorical
    for one-hot labels, sparse categorical otherwise; every other metric is wrapped in
    :class:`LabelColumnsMetric`.

    Example:
        >>> for_packed_targets("accuracy", units=1).metric.__class__.__name__
        'BinaryAccuracy'
    """
    if isinstance(metric, GROUP_AWARE):
        return metric
    if metric in ("accuracy", "acc"):
        if units == 1:
            metric = keras.metrics.BinaryAccuracy(name="accuracy",
                                                  threshold=0.0 if from_logits else 0.5)
        elif onehot:
            metric = keras.metrics.CategoricalAccuracy(name="accuracy")
        else:
            metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    elif isinstance(metric, str):
        metric = keras.metrics.get(metric)
    if not isinstance(metric, keras.metrics.Metric):  # a plain function y_true, y_pred
        metric = keras.metrics.MeanMetricWrapper(metric, name=getattr(metric, "__name__",
                                                                      None))
    return LabelColumnsMetric(metric)
