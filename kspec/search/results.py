"""What a search leaves behind: trial table (CSV and text), objective plot, best resolved spec.

Project directory layout (next to KerasTuner's own ``oracle.json`` and ``trial_*/``)::

    PROJECT/
      search.json        fingerprint of the spec and its spaces (resume refuses a change)
      trials.csv         one row per trial, best first: status, objective, values, reason
      objective.png      objective per trial, failed trials marked, best so far
      best_spec.yaml     the best resolved spec: `kspec fit PROJECT/best_spec.yaml`
      best_model.keras   the best trial's model (its best epoch)
      best_metrics.json  that model's metrics on the test split (when the data has one)
      trial_N/spec.yaml  the resolved spec of each trial; kspec_trial.json its record
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kspec.validation.spaces import SearchPlan

_DONE = ("COMPLETED",)


@dataclass
class TrialRecord:
    """One trial of a search.

    Attributes:
        trial_id: KerasTuner's id (``"03"``); its files are in ``PROJECT/trial_03``.
        status: ``COMPLETED``, ``FAILED``, ``INVALID`` or ``RUNNING`` (interrupted).
        score: the objective (best epoch), None when the trial failed.
        values: the active hyperparameters, by spec path.
        epochs: epochs the trial was given; seconds: its wall time.
        reason: why it failed.
    """

    trial_id: str
    status: str
    score: float | None
    values: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    seconds: float | None = None
    reason: str = ""
    tuner_id: str = ""


def collect(oracle, plan: SearchPlan, project_dir: Path) -> list[TrialRecord]:
    """The records of every trial, in the order the trials started."""
    from kspec.search.hyper import RECORD, active_values

    order = list(getattr(oracle, "start_order", [])) or sorted(oracle.trials)
    out = []
    for trial_id in order:
        trial = oracle.trials[trial_id]
        extra: dict[str, Any] = {}
        path = project_dir / f"trial_{trial_id}" / RECORD
        if path.is_file():
            extra = json.loads(path.read_text())
        score = trial.score if trial.status in _DONE else None
        if score is not None and not math.isfinite(score):
            score = None
        out.append(TrialRecord(
            trial_id=trial_id, status=trial.status, score=score,
            values=active_values(plan, trial.hyperparameters),
            epochs=trial.hyperparameters.values.get("tuner/epochs", extra.get("epochs")),
            seconds=extra.get("seconds"), tuner_id=extra.get("tuner_id", ""),
            reason=trial.message or extra.get("reason", "") if trial.status != "COMPLETED"
            else ""))
    return out


def ranked(records: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """Best first; trials without a score (failed, interrupted) last, in start order."""
    done = [r for r in records if r.score is not None]
    done.sort(key=lambda r: r.score, reverse=direction == "max")
    return done + [r for r in records if r.score is None]


def write_table(records: list[TrialRecord], plan: SearchPlan, path: Path) -> None:
    """``trials.csv``: rank, trial, status, objective, epochs, seconds, each space, reason."""
    objective = plan.search.objective
    names = [s.name for s in plan.spaces]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "trial", "status", objective.name, "epochs", "seconds", *names,
                         "reason"])
        for rank, r in enumerate(ranked(records, objective.direction), 1):
            writer.writerow([rank if r.score is not None else "", r.trial_id, r.status,
                             "" if r.score is None else f"{r.score:.6g}", r.epochs or "",
                             "" if r.seconds is None else f"{r.seconds:.2f}",
                             *[_cell(r.values.get(n, "")) for n in names], r.reason])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summary(records: list[TrialRecord], plan: SearchPlan, project_dir: Path,
            top: int = 10) -> str:
    """The text printed at the end of ``kspec tune``: best trials first, failures counted."""
    objective = plan.search.objective
    rows = ranked(records, objective.direction)
    done = sum(r.score is not None for r in rows)
    failed = [r for r in rows if r.status in ("FAILED", "INVALID")]
    lines = [f"search   {project_dir}",
             f"trials   {len(rows)} ({done} finished, {len(failed)} failed); objective "
             f"{objective.name} ({objective.direction})", ""]
    width = max([len(n) for n in (s.name for s in plan.spaces)] + [10])
    for rank, r in enumerate(rows[:top], 1):
        score = "failed" if r.score is None else f"{r.score:.4f}"
        lines.append(f"#{rank:<3} trial {r.trial_id}  {objective.name} = {score}")
        for name, value in r.values.items():
            lines.append(f"       {name:<{width}}  {_cell(value)}")
        if r.reason:
            lines.append(f"       reason: {r.reason[:200]}")
    if len(rows) > top:
        lines.append(f"... {len(rows) - top} more in trials.csv")
    return "\n".join(lines)


def plot(records: list[TrialRecord], plan: SearchPlan, path: Path) -> None:
    """``objective.png``: the objective of each trial, best so far, failures at the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objective = plan.search.objective
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = list(range(1, len(records) + 1))
    ok = [(x, r.score) for x, r in zip(xs, records) if r.score is not None]
    if ok:
        ax.plot([x for x, _ in ok], [y for _, y in ok], "o", label=objective.name)
        best, best_line = None, []
        pick = max if objective.direction == "max" else min
        for x, y in ok:
            best = y if best is None else pick(best, y)
            best_line.append((x, best))
        ax.step([x for x, _ in best_line], [y for _, y in best_line], where="post",
                label="best so far")
    bad = [x for x, r in zip(xs, records) if r.score is None]
    if bad:
        low = min((y for _, y in ok), default=0.0)
        ax.plot(bad, [low] * len(bad), "x", color="red", label="failed")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in start order)")
    ax.set_ylabel(objective.name)
    ax.set_title(f"{plan.default.name}: {plan.search.tuner.type} search")
    if records:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no trials", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def best_spec(plan: SearchPlan, hp, epochs: int | None, score: float | None,
              trial_id: str) -> tuple[Any, str]:
    """The best resolved spec (a validated Spec) and its YAML, ready for ``kspec fit``.

    Every space is replaced by the trial's value; the ``search`` section is dropped;
    ``training.epochs`` is the number of epochs the trial trained, and the search's
    early stopping becomes the spec's when the spec has none.
    """
    from kspec.search.hyper import active_values, hp_chooser

    choose, scope = hp_chooser(hp)
    raw = plan.resolve(choose, scope)
    raw.pop("search", None)
    training = raw.setdefault("training", {})
    if epochs:
        training["epochs"] = int(epochs)
    es = plan.search.early_stopping
    callbacks = training.setdefault("callbacks", {}) or {}
    training["callbacks"] = callbacks
    if es is not None and not callbacks.get("early_stopping"):
        callbacks["early_stopping"] = {
            "monitor": es.monitor or plan.search.objective.name, "patience": es.patience,
            "min_delta": es.min_delta,
            "mode": plan.search.objective.direction if es.monitor is None else "auto"}
    if not callbacks:
        training.pop("callbacks")
    spec = plan.validate(raw)
    header = [f"# Best resolved spec of a {plan.search.tuner.type} search over {plan.source}",
              f"# trial {trial_id}: {plan.search.objective.name} = "
              f"{'n/a' if score is None else f'{score:.6g}'}"]
    header += [f"#   {k} = {v}" for k, v in active_values(plan, hp).items()]
    text = "\n".join(header) + "\n" + yaml.safe_dump(raw, sort_keys=False,
                                                     default_flow_style=None, width=100)
    return spec, text
