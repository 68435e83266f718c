"""Plots of the diagnostics (matplotlib, no display needed): per-layer statistics and the
metric under each robustness transform. Made with ``matplotlib.figure.Figure`` (never
pyplot), so a notebook's backend and inline figures are left alone."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def plot_layers(rows: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Three panels over the layers, input side first: gradient norm (log scale),
    activation std (log scale), and the dead / saturated fractions; written as PNG.

    Example:
        >>> plot_layers(diagnose("specs/quickstart.yaml").layers, Path("d.png"))  # doctest: +SKIP
    """
    names = [r["layer"] for r in rows]
    x = range(len(rows))
    fig = _figure(max(9.0, 0.55 * len(rows) * 3), 3.6)
    axes = fig.subplots(1, 3)

    def values(key):
        return [r[key] if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
                and r[key] > 0 else math.nan for r in rows]

    for ax, key, label in ((axes[0], "grad_norm", "gradient norm"),
                           (axes[1], "std", "activation std")):
        ax.bar(x, values(key), color="tab:blue" if key == "grad_norm" else "tab:green")
        ax.set_yscale("log")
        ax.set_title(f"{label} per layer")
    dead = [r["dead"] if isinstance(r.get("dead"), float) and not math.isnan(r["dead"])
            else 0.0 for r in rows]
    sat = [r["saturated"] if isinstance(r.get("saturated"), float)
           and not math.isnan(r["saturated"]) else 0.0 for r in rows]
    axes[2].bar(x, dead, color="tab:red", label="dead (ReLU family)")
    axes[2].bar(x, sat, bottom=dead, color="tab:orange", label="saturated (sigmoid/tanh)")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("dead / saturated fraction")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_robustness(rows: Sequence[Mapping[str, Any]], path: Path, metric: str,
                    title: str = "") -> Path:
    """The metric under each transform (the clean score first) with its drop; PNG."""
    names = [r["transform"] for r in rows]
    scores = [r["score"] for r in rows]
    fig = _figure(max(5.0, 0.7 * len(rows) + 2), 3.6)
    ax = fig.subplots()
    colors = ["tab:green" if r["transform"] == "clean" else "tab:blue" for r in rows]
    bars = ax.bar(range(len(rows)), scores, color=colors)
    for bar, r in zip(bars, rows):
        if r["transform"] != "clean":
            ax.annotate(f"{-r['drop']:+.3g}", (bar.get_x() + bar.get_width() / 2,
                                               bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title or f"{metric} under each transform (change from clean above bars)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
