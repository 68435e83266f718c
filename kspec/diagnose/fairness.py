"""The subgroup table of a run with ``data.groups``: accuracy per group and per (label x
group) cell, the accuracy gap and statistical parity (total-variation distance).

Cutting by cell shows what a per-group number hides: a smile classifier can be 95% accurate
on men overall and still miss most smiling men, when smiling men are 2% of the data.

Example:
    >>> t = table_of([1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1])
    >>> [(c["label"], c["group"], c["accuracy"]) for c in t.cells]
    [(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.0)]
    >>> round(t.accuracy_gap, 2), round(t.parity, 2)
    (0.5, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from kspec.errors import SpecError


@dataclass
class SubgroupTable:
    """Accuracy by group and by (label, group) cell on one split.

    Attributes:
        cells: one dict per (label, group) cell with rows: ``label``, ``group``,
            ``count``, ``share`` (of all rows), ``accuracy``, ``predicted_positive``.
        groups: one dict per group: ``group``, ``count``, ``share``, ``accuracy``,
            ``predicted_positive`` (binary) or the predicted-class rates.
        accuracy: overall accuracy.
        accuracy_gap: the largest difference between two groups' accuracies.
        parity: statistical parity, the largest total-variation distance between two
            groups' distributions of predicted classes (D_tv).
    """

    cells: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    accuracy: float
    accuracy_gap: float
    parity: float
    split: str = "test"
    group_names: list[str] | None = None
    class_names: list[str] | None = None
    rows: int = 0
    notes: list[str] = field(default_factory=list)

    def _group(self, g: int) -> str:
        names = self.group_names or []
        return f"{g} ({names[g]})" if g < len(names) and names[g] else str(g)

    def _label(self, c: int) -> str:
        names = self.class_names or []
        return f"{c} ({names[c]})" if c < len(names) else str(c)

    def text(self) -> str:
        lines = [f"subgroups on the {self.split} split ({self.rows} rows)", "",
                 f"  {'label':<18}{'group':<24}{'share':>8}{'rows':>7}{'accuracy':>10}"]
        for c in self.cells:
            lines.append(f"  {self._label(c['label']):<18}{self._group(c['group']):<24}"
                         f"{c['share']:>8.2f}{c['count']:>7}{_pct(c['accuracy']):>10}")
        lines += ["", f"  {'group':<42}{'share':>8}{'rows':>7}{'accuracy':>10}"]
        for g in self.groups:
            lines.append(f"  {self._group(g['group']):<42}{g['share']:>8.2f}{g['count']:>7}"
                         f"{_pct(g['accuracy']):>10}")
        lines += ["", f"  accuracy {self.accuracy:.4f}   accuracy gap {self.accuracy_gap:.4f}"
                  f"   statistical parity (D_tv) {self.parity:.4f}"]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "rows": self.rows, "cells": self.cells,
                "groups": self.groups, "accuracy": self.accuracy,
                "accuracy_gap": self.accuracy_gap, "statistical_parity": self.parity,
                "group_names": self.group_names, "class_names": self.class_names}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def table_of(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[int], *,
             split: str = "test", group_names: list[str] | None = None,
             class_names: list[str] | None = None) -> SubgroupTable:
    """The subgroup table from true classes, predicted classes and group ids."""
    t, p, g = (np.asarray(a).astype("int64").ravel() for a in (y_true, y_pred, groups))
    n = len(t)
    hit = t == p
    classes = sorted(set(t.tolist()) | set(p.tolist()))
    k = max(classes) + 1 if classes else 2
    cells, per_group, rates = [], [], []
    for label in sorted(set(t.tolist())):
        for group in sorted(set(g.tolist())):
            mask = (t == label) & (g == group)
            cells.append({"label": label, "group": group, "count": int(mask.sum()),
                          "share": float(mask.mean()) if n else 0.0,
                          "accuracy": float(hit[mask].mean()) if mask.any() else None})
    for group in sorted(set(g.tolist())):
        mask = g == group
        dist = np.bincount(p[mask], minlength=k) / max(1, mask.sum())
        rates.append(dist)
        row = {"group": group, "count": int(mask.sum()), "share": float(mask.mean()),
               "accuracy": float(hit[mask].mean())}
        if k == 2:
            row["predicted_positive"] = float(dist[1])
        per_group.append(row)
    accs = [r["accuracy"] for r in per_group]
    parity = max((0.5 * float(np.abs(a - b).sum()) for a in rates for b in rates), default=0.0)
    return SubgroupTable(cells, per_group, float(hit.mean()) if n else 0.0,
                         (max(accs) - min(accs)) if accs else 0.0, parity, split,
                         group_names, class_names, n)


def predicted_classes(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class per row: one output unit thresholded, several arg-maxed."""
    p = np.asarray(probabilities)
    if p.ndim == 1 or p.shape[-1] == 1:
        return (p.reshape(len(p)) > threshold).astype("int64")
    return p.argmax(axis=-1)


def true_classes(labels: np.ndarray) -> np.ndarray:
    """Class per row from integer labels (one column) or one-hot rows."""
    y = np.asarray(labels)
    if y.ndim == 1 or y.shape[-1] == 1:
        return np.round(y.reshape(len(y))).astype("int64")
    return y.argmax(axis=-1)


def logits_threshold(spec: Any) -> float:
    """0.0 when the (wrapped) loss reads logits, else 0.5."""
    loss = spec.training.loss
    while isinstance(loss, dict):
        if loss.get("from_logits"):
            return 0.0
        loss = loss.get("loss")
    return 0.5


def subgroup_table(run: Any, split: str = "test") -> SubgroupTable:
    """The subgroup table of a run (directory or ``kspec.Run``) whose spec has
    ``data.groups``, on one split.

    Raises:
        SpecError: the spec has no ``data.groups``, or the split does not exist.

    Example:
        >>> t = subgroup_table("runs/fairness_smiles-20261201-092454")  # doctest: +SKIP
        >>> [(c["label"], c["group"], round(c["share"], 2)) for c in t.cells]  # doctest: +SKIP
        [(0, 0, 0.45), (0, 1, 0.06), (1, 0, 0.47), (1, 1, 0.02)]
    """
    if hasattr(run, "model") and hasattr(run, "data") and run.data is not None:
        spec, model, data = run.spec, run.model, run.data
    else:
        from kspec.diagnose.runs import load_run

        parts = load_run(run)
        spec, model, data = parts.spec, parts.model, parts.data
    if spec.data.groups is None:
        raise SpecError("data.groups", "the subgroup table needs each row's group; this "
                        "spec has no data.groups")
    part = data.splits().get(split)
    if part is None:
        raise SpecError("split", f"the run has no {split} split", value=split,
                        valid=sorted(data.splits()))
    probs = model.predict(part.x if len(part.x) > 1 else next(iter(part.x.values())),
                          verbose=0)
    y = part.y[..., :-1]  # the packed targets end with the group column
    return table_of(true_classes(y), predicted_classes(probs, logits_threshold(spec)),
                    part.groups, split=split, group_names=data.meta.get("group_names"),
                    class_names=data.meta.get("class_names"))
