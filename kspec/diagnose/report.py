"""``kspec report``: the bias/variance report of a run and the next step from the recipe.

From the run's training, dev (validation) and test error (``1 - accuracy`` for a
classifier, the loss otherwise, see ``kspec.train.error_rates``) and a human-level (or
target) error:

- avoidable bias = training error - human-level error (underfitting);
- variance = dev error - training error (overfitting);
- dev-test gap = test error - dev error (the dev set was overfit, or dev and test come
  from different distributions).

A gap counts when it exceeds ``tolerance`` (default: 0.01 for error rates, 10% of the
reference error for losses) and, for error rates on splits of known size, also twice its
standard error (``sqrt(p(1-p)/n)`` per split): a gap of 5 rows in 300 is sampling noise.
The recipe: with high avoidable bias, a bigger model, longer training or another
architecture; with high variance, more data, regularization or augmentation; with a
dev-test gap, dev and test from one distribution (or a bigger dev set).
The bigger problem comes first.

Example:
    >>> r = bias_variance("runs/quickstart-20261124-110738", human_error=0.01)  # doctest: +SKIP
    >>> r.problems                                                            # doctest: +SKIP
    ['variance']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kspec.diagnose.runs import read_run
from kspec.errors import SpecError
from kspec.train.error_rates import split_errors

RATE_TOLERANCE = 0.01
LOSS_TOLERANCE = 0.1  # of the reference error (human-level, else training)

STEPS = {
    "bias": ["train a bigger model (more units or layers)",
             "train longer, or with a better optimizer or learning rate",
             "try another architecture (convolutions for images, ...)",
             "use less regularization (smaller L2, less dropout)"],
    "variance": ["get more training data",
                 "regularize: L2 weight decay, dropout, early stopping",
                 "augment the data (data.augmentation: flips, shifts, noise)",
                 "try a smaller model or another architecture"],
    "mismatch": ["make dev and test come from the same distribution (the data you expect "
                 "in use)",
                 "if they already do, the dev set was overfit by tuning: get a bigger dev "
                 "set"],
}
TITLES = {"bias": "high avoidable bias (underfitting)", "variance": "high variance "
          "(overfitting)", "mismatch": "dev-test gap (different distributions, or an "
          "overfit dev set)"}


@dataclass
class Report:
    """The bias/variance report of one run (errors per split, gaps, problems, steps)."""

    name: str
    run_dir: str
    measure: str
    errors: dict[str, float]
    human_error: float | None
    tolerance: float
    gaps: dict[str, float] = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subgroups: Any = None

    @property
    def next_steps(self) -> list[str]:
        """The recipe's steps for the biggest problem (empty when there is none)."""
        return STEPS[self.problems[0]] if self.problems else []

    def text(self) -> str:
        e, g = self.errors, self.gaps
        human = ("not given (avoidable bias measured against 0; pass --human-error or set "
                 "training.human_error)" if self.human_error is None
                 else f"{self.human_error:.4g}")
        lines = [f"run      {self.run_dir}", f"spec     {self.name}",
                 f"errors   {self.measure}", "",
                 f"  human-level / target error   {human}"]
        for label, key in (("training error", "train"), ("dev (validation) error",
                                                         "validation"),
                           ("test error", "test")):
            value = e.get(key)
            lines.append(f"  {label:<29}{'-' if value is None else f'{value:.4g}'}")
        lines.append("")
        for label, key in (("avoidable bias", "bias"), ("variance", "variance"),
                           ("dev-test gap", "mismatch")):
            value = g.get(key)
            shown = "-" if value is None else f"{value:+.4g}"
            if self.noise.get(key):
                shown += f" (noise +-{self.noise[key]:.2g})"
            flag = "   <- " + TITLES[key] if key in self.problems else ""
            lines.append(f"  {label:<29}{shown}{flag}")
        lines.append(f"  (a gap counts above {self.tolerance:.3g}"
                     + (" and above its sampling noise, 2 standard errors)" if self.noise
                        else ")"))
        lines.append("")
        lines += [f"note     {n}" for n in self.notes]
        if self.problems:
            lines.append(f"next     {TITLES[self.problems[0]]}:")
            lines += [f"  - {step}" for step in self.next_steps]
            for other in self.problems[1:]:
                lines.append(f"then     {TITLES[other]}: {STEPS[other][0]}, ...")
        else:
            lines.append("next     bias, variance and the dev-test gap are within tolerance: "
                         "done, or set a lower target error")
        if self.subgroups is not None:
            lines += ["", self.subgroups.text()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "run_dir": self.run_dir, "measure": self.measure,
                "errors": self.errors, "human_error": self.human_error,
                "tolerance": self.tolerance, "gaps": self.gaps, "noise": self.noise,
                "rows": self.rows, "problems": self.problems,
                "next_steps": self.next_steps, "notes": self.notes,
                "subgroups": self.subgroups.as_dict() if self.subgroups is not None else None}


def bias_variance(run: Any, human_error: float | None = None, *,
                  tolerance: float | None = None, subgroups: bool = False) -> Report:
    """The bias/variance report of a finished run.

    Args:
        run: a run directory or a ``kspec.Run``.
        human_error: the human-level (or target) error, in the report's units; default
            the spec's ``training.human_error``.
        tolerance: the smallest gap that counts (see the module's docstring).
        subgroups: also compute the subgroup table (runs with ``data.groups``; loads the
            model and the data).

    Raises:
        SpecError: not a run directory, or a run without final metrics.

    Example:
        >>> print(bias_variance(run, human_error=0.01).text())  # doctest: +SKIP
    """
    if hasattr(run, "run_dir") and hasattr(run, "metrics"):
        name, run_dir, spec, metrics = run.spec.name, str(run.run_dir), run.spec, run.metrics
        data = getattr(run, "data", None)
        rows = {k: len(v) for k, v in data.splits().items()} if data is not None else {}
    else:
        parts = read_run(run)
        name, run_dir, spec, metrics = (parts.spec.name, str(parts.run_dir), parts.spec,
                                        parts.metrics)
        rows = parts.meta.get("rows") or {}
    if not metrics:
        raise SpecError("run", f"{run_dir} has no metrics.json (did the run finish?)",
                        value=run_dir)
    if human_error is None:
        human_error = spec.training.human_error
    if human_error is not None and human_error < 0:
        raise SpecError("human_error", "must be 0 or more", value=human_error)
    errors = split_errors(spec, metrics)
    measure = errors.pop("measure")
    errors.pop("metric")
    rate = measure.startswith("1 - ")
    if tolerance is None:
        reference = human_error if human_error else abs(errors.get("train", 0.0))
        tolerance = RATE_TOLERANCE if rate else max(LOSS_TOLERANCE * reference, 1e-12)
    report = Report(name, run_dir, measure, errors, human_error, float(tolerance),
                    rows={k: int(v) for k, v in rows.items()})
    _analyse(report, rate)
    if subgroups and spec.data.groups is not None:
        from kspec.diagnose.fairness import subgroup_table

        report.subgroups = subgroup_table(Path(run_dir) if not hasattr(run, "model") else run)
    return report


def _analyse(r: Report, rate: bool) -> None:
    """The gaps, their sampling noise, and the problems that exceed both."""
    e, tol = r.errors, r.tolerance
    train, dev, test = e.get("train"), e.get("validation"), e.get("test")
    if train is not None:
        r.gaps["bias"] = train - (r.human_error or 0.0)
    if train is not None and dev is not None:
        r.gaps["variance"] = dev - train
    elif train is not None and test is not None:
        r.gaps["variance"] = test - train
        r.notes.append("no dev (validation) split: variance is measured on the test split, "
                       "and the dev-test gap is unknown")
    if dev is not None and test is not None:
        r.gaps["mismatch"] = test - dev
    if rate:
        r.noise = _noise(e, r.rows, r.gaps)
    if r.gaps.get("bias", 0.0) < -tol:
        r.notes.append("the training error is below the human-level error: the model fits "
                       "the training set better than a human would, so progress on bias "
                       "gets harder; look at variance")
    size = {k: r.gaps.get(k, 0.0) for k in ("bias", "variance")}
    size["mismatch"] = abs(r.gaps.get("mismatch", 0.0))  # test better than dev is odd too
    # A gap equal to the tolerance does not count (1e-12: float rounding of 0.31 - 0.30).
    r.problems = sorted((k for k, v in size.items()
                         if v > max(tol, r.noise.get(k, 0.0)) + 1e-12), key=lambda k: -size[k])


def _noise(errors: dict[str, float], rows: dict[str, int],
           gaps: dict[str, float]) -> dict[str, float]:
    """Two standard errors of each gap between error rates measured on ``rows`` rows."""
    def var(split):
        p, n = errors.get(split), rows.get(split)
        return None if p is None or not n else p * (1 - p) / n

    pairs = {"bias": ("train",), "variance": ("train", "validation"),
             "mismatch": ("validation", "test")}
    if "variance" in gaps and "validation" not in errors:
        pairs["variance"] = ("train", "test")
    out = {}
    for gap, splits in pairs.items():
        parts = [var(s) for s in splits]
        if gap in gaps and all(v is not None for v in parts):
            out[gap] = 2 * sum(parts) ** 0.5
    return out
