"""Plain-words findings from per-layer statistics, with the thresholds that raise them.

Each finding has a severity: ``error`` (the network cannot learn as it is: every unit of a
layer identical, all units dead, NaN/inf values) or ``warning`` (it will learn slowly or
badly: vanishing or exploding gradients, mostly dead or saturated units, activations that
shrink or grow layer after layer). Thresholds are module constants, documented in
docs/diagnostics.md.

Example:
    >>> rows = [{"layer": "dense_0", "grad_norm": 1e-9, "std": 0.5, "activation": "sigmoid",
    ...          "dead": float("nan"), "saturated": 0.0, "identical": False, "units": 8,
    ...          "mean": 0.5, "weight_norm": 1.0},
    ...         {"layer": "output", "grad_norm": 1.0, "std": 0.3, "activation": "softmax",
    ...          "dead": float("nan"), "saturated": float("nan"), "identical": False,
    ...          "units": 10, "mean": 0.1, "weight_norm": 1.0}]
    >>> [f.code for f in find(rows, outputs={"output"})]
    ['vanishing_gradients']
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

VANISHING_RATIO = 1e-3  # first weighted layer's gradient norm / the last one's
EXPLODING_RATIO = 1e3
DEAD_FRACTION = 0.5  # of a hidden layer's ReLU-family units never positive on the probe
SATURATED_FRACTION = 0.5  # of a hidden sigmoid/tanh layer's values in saturation
SHRINKING_STD = 1e-2  # last hidden layer's activation std / the first one's
GROWING_STD = 1e2
SEVERITIES = ("warning", "error")  # lowest first


@dataclass
class Finding:
    """One problem: ``severity`` (``warning`` / ``error``), a ``code``
    (``vanishing_gradients``, ``dead_units``, ...), the ``layer`` it concerns (or None for
    the whole network), the ``message`` in plain words and the measured ``value``."""

    severity: str
    code: str
    message: str
    layer: str | None = None
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value: float) -> str:
    return f"{value:.0e}" if value and (abs(value) < 1e-2 or abs(value) >= 1e3) else (
        f"{value:.2g}")


def find(rows: Sequence[dict[str, Any]], outputs: Iterable[str] = ()) -> list[Finding]:
    """The findings for one probe's rows (``kspec.train.diagnostics.Probe`` output).

    Args:
        rows: per-layer statistics, input side first.
        outputs: names of the model's output layers (saturation and dead units are
            expected there: a confident sigmoid output is saturated by design).
    """
    outputs = set(outputs)
    found: list[Finding] = []
    found += _nonfinite(rows)
    found += _identical(rows)
    hidden = [r for r in rows if r["layer"] not in outputs]
    found += _units(hidden)
    found += _gradients(rows)
    found += _activations(hidden)
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(found, key=lambda f: order.get(f.severity, 9))


def _nonfinite(rows) -> list[Finding]:
    # Activations always have values; a layer with trainable weights always has a gradient
    # norm (frozen layers have neither norm, so NaN there means "not trained", not broken).
    bad = [r["layer"] for r in rows
           if not (_finite(r.get("mean")) and _finite(r.get("std")))
           or (_finite(r.get("weight_norm")) and not _finite(r.get("grad_norm")))
           or (isinstance(r.get("weight_norm"), float) and math.isinf(r["weight_norm"]))]
    if not bad:
        return []
    return [Finding("error", "nonfinite", f"{', '.join(bad)}: NaN or infinite activations or "
                    "gradients (lower the learning rate, check the inputs for extreme values, "
                    "or use a numerically stable loss such as from_logits: true)", bad[0])]


def _identical(rows) -> list[Finding]:
    same = [r for r in rows if r.get("identical")]
    if not same:
        return []
    names = _names([(r, None) for r in same])
    return [Finding("error", "identical_units", f"{names}: every unit of "
                    f"{'this layer' if len(same) == 1 else 'each of these layers'} has the "
                    "same weights (zero or constant initialization), so they all get the "
                    "same gradient and stay identical: symmetry is never broken; use a "
                    "random initializer (glorot for tanh/sigmoid, he for ReLU)",
                    same[0]["layer"])]


def _units(hidden) -> list[Finding]:
    """Dead and saturated units, one finding per kind (and severity) over all layers."""
    out = []
    dead = [(r, r["dead"]) for r in hidden if _finite(r.get("dead"))
            and r["dead"] >= DEAD_FRACTION]
    for severity, group in (("error", [d for d in dead if d[1] >= 1.0]),
                            ("warning", [d for d in dead if d[1] < 1.0])):
        if group:
            acts = "/".join(dict.fromkeys(r["activation"] for r, _ in group))
            out.append(Finding(severity, "dead_units", f"{_names(group)}: {_share(group)} of "
                               f"{acts} units are dead (never positive on the probe, so they "
                               "pass no gradient); lower the learning rate, use he "
                               "initialization, a non-negative bias or leaky_relu",
                               group[0][0]["layer"], max(v for _, v in group)))
    sat = [(r, r["saturated"]) for r in hidden if _finite(r.get("saturated"))
           and r["saturated"] >= SATURATED_FRACTION]
    if sat:
        acts = "/".join(dict.fromkeys(r["activation"] for r, _ in sat))
        out.append(Finding("warning", "saturated", f"{_names(sat)}: {_share(sat)} of the "
                           f"{acts} outputs are saturated (gradient near 0); the weights are "
                           "too large for this activation: use glorot initialization, "
                           "normalized inputs or batch norm", sat[0][0]["layer"],
                           max(v for _, v in sat)))
    return out


def _names(group) -> str:
    names = [r["layer"] for r, _ in group]
    return names[0] if len(names) == 1 else (
        f"{', '.join(names)}" if len(names) <= 3 else
        f"{names[0]} .. {names[-1]} ({len(names)} layers)")


def _share(group) -> str:
    lo, hi = min(v for _, v in group), max(v for _, v in group)
    return f"{hi:.0%}" if round(lo, 2) == round(hi, 2) else f"{lo:.0%} to {hi:.0%}"


def _gradients(rows) -> list[Finding]:
    weighted = [r for r in rows if _finite(r.get("grad_norm")) and _finite(r.get("weight_norm"))]
    if len(weighted) < 2:
        return []
    first, last = weighted[0], weighted[-1]
    g0, g1 = first["grad_norm"], last["grad_norm"]
    depth = len(weighted)
    if g1 <= 0:
        if g0 <= 0:
            return [Finding("error", "no_gradient", "the loss has no gradient with respect "
                            "to any weight on the probe (a constant loss: check the labels "
                            "and the output activation)", None, 0.0)]
        return []
    ratio = g0 / g1
    where = (f"gradients at {first['layer']} (weighted layer 1 of {depth}) are "
             f"{_fmt(ratio)} of those at {last['layer']} (layer {depth})")
    if ratio < VANISHING_RATIO:
        return [Finding("warning", "vanishing_gradients", f"{where}: vanishing; the first "
                        "layers barely learn (use ReLU with he initialization, batch norm, "
                        "residual connections or fewer layers)", first["layer"], ratio)]
    if ratio > EXPLODING_RATIO:
        return [Finding("warning", "exploding_gradients", f"{where}: exploding; lower the "
                        "learning rate, use glorot/he initialization, batch norm or gradient "
                        "clipping (clipnorm on the optimizer)", first["layer"], ratio)]
    return []


def _activations(hidden) -> list[Finding]:
    acts = [r for r in hidden if r.get("activation") not in ("", None, "linear", "softmax")
            and _finite(r.get("std"))]
    if len(acts) < 3:
        return []
    first, last = acts[0], acts[-1]
    if first["std"] <= 0:
        return []
    ratio = last["std"] / first["std"]
    span = (f"activation std {{}} from {_fmt(first['std'])} ({first['layer']}) to "
            f"{_fmt(last['std'])} ({last['layer']}) over {len(acts)} layers")
    squashing = {r["activation"] for r in acts} & {"sigmoid", "hard_sigmoid"}
    if ratio < SHRINKING_STD:
        why = ("sigmoid's slope is at most 0.25, so each layer shrinks the signal: use tanh "
               "or ReLU, or batch norm" if squashing else
               "initializer too small for this depth: use glorot for tanh, he for ReLU")
        return [Finding("warning", "shrinking_activations", span.format("falls") + f" ({why})",
                        last["layer"], ratio)]
    if ratio > GROWING_STD:
        return [Finding("warning", "growing_activations", span.format("grows") + " "
                        "(initializer too large for this depth: use glorot for tanh, he for "
                        "ReLU)", last["layer"], ratio)]
    return []


def worst(findings: Sequence[Finding]) -> str | None:
    """The highest severity among ``findings`` (None when there are none)."""
    ranks = [SEVERITIES.index(f.severity) for f in findings if f.severity in SEVERITIES]
    return SEVERITIES[max(ranks)] if ranks else None
