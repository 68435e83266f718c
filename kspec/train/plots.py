"""Plots of training curves (matplotlib, no display needed).

Figures are made with ``matplotlib.figure.Figure`` directly, never through pyplot, so that
plotting from kspec neither switches the caller's backend (a notebook's inline figures keep
working) nor leaves figures open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence


def plot_history(history: Mapping[str, Sequence[float]], path: Path, title: str = "") -> Path:
    """One panel per metric, training and validation curves together; written as PNG."""
    from matplotlib.figure import Figure

    names = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    names = names or list(history)
    cols = min(3, len(names)) or 1
    rows = (len(names) + cols - 1) // cols or 1
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = history[name]
        epochs = range(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", ms=3, label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", ms=3, label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    # Fixed margins in inches instead of tight_layout, which measures every tick label
    # (a third of the plot's time, bench_process.py).
    width, height = fig.get_size_inches()
    top = 0.55 if title else 0.35
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, bottom=0.5 / height,
                        top=1 - top / height, wspace=0.25, hspace=0.45)
    fig.savefig(path, dpi=100)
    return path


def plot_diagnostics(rows: Sequence[Mapping], path: Path, title: str = "") -> Path:
    """Per-layer statistics over epochs (``diagnostics.csv`` rows): the gradient norm and
    the activation std of each layer, both on a log scale (zeros are left out); PNG.

    Example:
        >>> plot_diagnostics(read_rows(run.diagnostics_csv()), run.diagnostics_png())
        ...                                                          # doctest: +SKIP
    """
    import math

    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig = Figure(figsize=(11 if len(layers) <= 16 else 12.5, 3.8))
    axes = fig.subplots(1, 2)
    cmap = colormaps["viridis"]
    for i, name in enumerate(layers):
        mine = [r for r in rows if r["layer"] == name]
        color = cmap(i / max(1, len(layers) - 1))
        for ax, key in zip(axes, ("grad_norm", "std")):
            points = [(r["epoch"], r[key]) for r in mine
                      if not math.isnan(r[key]) and r[key] > 0]
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, color=color, label=name)
    axes[0].set_title("gradient norm per layer")
    axes[1].set_title("activation std per layer")
    for ax in axes:
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (0: at initialization)")
        ax.grid(alpha=0.3)
    if layers:
        axes[1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       ncol=1 if len(layers) <= 16 else 2, title="layer", title_fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()  # makes room for the legend beside the axes
    fig.savefig(path, dpi=100)
    return path
