"""Seeing inside training: per-layer diagnostics, the bias/variance report, robustness under
input transforms, the subgroup table (docs/diagnostics.md).

``diagnose`` probes a spec or a run; ``bias_variance`` reads a run's errors; ``evaluate_under``
scores a run or an export under transforms; ``subgroup_table`` cuts a fairness run's test
split by group and by (label x group) cell. TensorFlow is imported only when a model is
built or loaded.
"""

from kspec.diagnose.fairness import subgroup_table
from kspec.diagnose.probe import diagnose
from kspec.diagnose.report import bias_variance
from kspec.diagnose.robustness import evaluate_under

__all__ = ["bias_variance", "diagnose", "evaluate_under", "subgroup_table"]
