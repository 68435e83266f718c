"""Custom Keras classes of kspec: Maxout, fixed conv kernels, content/style losses, fairness
and per-class metrics, uncertainty weighting; and ``kspec.register`` for users' own.

Importing this package imports Keras and registers every class with Keras's serialization,
so a ``.keras`` file that uses them loads with ``keras.saving.load_model(path,
safe_mode=True)`` in a fresh process. Spec validation never imports it: the registries in
``kspec.build`` import these modules inside their factories.

Example:
    >>> import keras, kspec.components
    >>> keras.saving.get_registered_object("kspec>Maxout").__name__
    'Maxout'
"""

from __future__ import annotations

from kspec.components.activations import Maxout
from kspec.components.initializers import FixedKernel
from kspec.components.losses import ContentLoss, LabelColumnsLoss, StyleLoss, gram_matrix
from kspec.components.metrics import (
    BalancedAccuracy,
    LabelColumnsMetric,
    PerClassAccuracy,
    StatisticalParity,
    SubgroupAccuracy,
    SubgroupAccuracyGap,
    pack_groups,
)
from kspec.components.multitask import (
    UncertaintyWeightedModel,
    UncertaintyWeighting,
    uncertainty_weighted_total,
    with_uncertainty_weighting,
)

__all__ = [
    "BalancedAccuracy", "ContentLoss", "FixedKernel", "LabelColumnsLoss", "LabelColumnsMetric",
    "Maxout",
    "PerClassAccuracy", "StatisticalParity", "StyleLoss", "SubgroupAccuracy", "SubgroupAccuracyGap",
    "UncertaintyWeightedModel", "UncertaintyWeighting", "gram_matrix",
    "pack_groups", "uncertainty_weighted_total", "with_uncertainty_weighting",
]
