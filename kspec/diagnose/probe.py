"""``kspec diagnose``: one forward/backward pass on probe batches, a per-layer table, a plot
and findings in plain words, for a spec at initialization or a trained run.

Example:
    >>> d = diagnose("specs/deep_stack.yaml", overrides={"model.layers[1].activation":
    ...                                                  "sigmoid"})  # doctest: +SKIP
    >>> [f.code for f in d.findings]                                  # doctest: +SKIP
    ['vanishing_gradients', 'shrinking_activations']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kspec.diagnose.findings import SEVERITIES, Finding, find, worst
from kspec.diagnose.runs import is_run_dir, load_run

COLUMNS = [("layer", 18), ("type", 12), ("activation", 11), ("units", 6), ("mean", 10),
           ("std", 10), ("dead", 6), ("saturated", 10), ("grad_norm", 10),
           ("weight_norm", 12)]


@dataclass
class Diagnosis:
    """What :func:`diagnose` found.

    Attributes:
        target: the spec or run directory that was probed.
        kind: ``spec`` (at initialization) or ``run`` (trained weights).
        name: the spec's name.
        layers: one row of statistics per layer (``kspec.train.diagnostics.COLUMNS``).
        findings: the problems, errors first.
        loss: the loss on the probe.
        rows: how many rows the probe had.
    """

    target: str
    kind: str
    name: str
    layers: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    loss: float = math.nan
    rows: int = 0

    def worst(self) -> str | None:
        """The highest severity found (``error``, ``warning``), or None."""
        return worst(self.findings)

    def fails(self, level: str) -> bool:
        """Whether a finding at ``level`` (``warning`` / ``error``) or above is present."""
        found = self.worst()
        return found is not None and SEVERITIES.index(found) >= SEVERITIES.index(level)

    def table(self) -> str:
        """The per-layer table as text."""
        head = "".join(f"{name:<{w}}" if i < 3 else f"{name:>{w}}"
                       for i, (name, w) in enumerate(COLUMNS))
        lines = [head]
        for r in self.layers:
            cells = []
            for i, (name, w) in enumerate(COLUMNS):
                v = r.get(name)
                if i < 3:
                    cells.append(f"{str(v or '-')[:w - 1]:<{w}}")
                elif name in ("dead", "saturated"):
                    cells.append(f"{'-' if _nan(v) else f'{v:.0%}':>{w}}")
                elif name == "units":
                    cells.append(f"{v:>{w}}")
                else:
                    cells.append(f"{'-' if _nan(v) else f'{v:.3g}':>{w}}")
            lines.append("".join(cells))
        return "\n".join(lines)

    def text(self) -> str:
        """The table, then the findings (or a line saying there are none)."""
        where = "at initialization" if self.kind == "spec" else "trained weights"
        lines = [f"{self.name} ({where}): one forward/backward pass on {self.rows} rows of "
                 f"the training split, loss {self.loss:.4g}", "", self.table(), ""]
        if self.findings:
            lines += [str(f) for f in self.findings]
        else:
            lines.append("no findings: gradients, activations and units look healthy")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (NaN as null)."""
        return {"target": self.target, "kind": self.kind, "name": self.name,
                "rows": self.rows, "loss": _json(self.loss), "worst": self.worst(),
                "layers": [{k: _json(v) for k, v in r.items()} for r in self.layers],
                "findings": [f.as_dict() for f in self.findings]}

    def plot(self, path: str | Path) -> Path:
        """Per-layer gradient norm (log scale) and activation std, as PNG."""
        from kspec.diagnose.plots import plot_layers

        return plot_layers(self.layers, Path(path), title=f"{self.name} ({self.kind})")


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _json(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def diagnose(target: Any, data: Any = None, *, overrides: Mapping[str, Any] | None = None,
             probe_batches: int = 2, batch_size: int | None = None) -> Diagnosis:
    """Probe a spec at initialization, or a trained run, and find what would go wrong.

    Args:
        target: a spec (path, YAML text, dict or Spec: built with its initial weights) or
            a run directory (its trained ``model.keras``).
        data: in-memory data as ``kspec.fit`` takes it (default: the spec's source).
        overrides: values by key path (``{"model.layers[1].activation": "tanh"}``).
        probe_batches: batches of the training split in the probe.
        batch_size: rows per batch; default ``training.batch_size``.

    Returns:
        A :class:`Diagnosis`: per-layer statistics and findings.

    Example:
        >>> diagnose("specs/quickstart.yaml").findings  # doctest: +SKIP
        []
    """
    from kspec.train.diagnostics import Probe, probe_arrays

    if is_run_dir(target):
        parts = load_run(target, data=data)
        spec, loaded, model, kind = parts.spec, parts.data, parts.model, "run"
    else:
        from kspec.train.fit import prepare

        spec, loaded, model = prepare(target, data, overrides)
        kind = "spec"
    rows = probe_batches * (batch_size or spec.training.batch_size)
    x, y = probe_arrays(loaded.train, rows)
    probe = Probe(model)
    stats = probe(x, y)
    outputs = probe.outputs
    return Diagnosis(_label(target, spec.name), kind, spec.name, stats, find(stats, outputs),
                     probe.loss, min(rows, len(loaded.train)))


def _label(target: Any, name: str) -> str:
    """A path as given, else (YAML text, a dict, a Spec) the spec's name."""
    if isinstance(target, Path):
        return str(target)
    try:
        return target if isinstance(target, str) and Path(target).exists() else name
    except OSError:  # YAML text too long to be a file name
        return name
