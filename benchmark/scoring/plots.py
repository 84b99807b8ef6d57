"""The per-task figures of the site: loss and collapse-ratio curves, and the secondary metrics.

Every curve is the mean over seeds with its 95% bootstrap band (the numbers computed in
:mod:`leaderboard.aggregate`); an entry keeps its colour on every page. PNGs are written
without a timestamp, so the same numbers give the same bytes.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PNG_METADATA = {"Software": None}


def colours(names: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: palette(index % palette.N) for index, name in enumerate(sorted(names))}


def _draw(ax: Any, curve: Mapping[str, Sequence[float | None]], colour: Any, label: str, dashed: bool) -> None:
    generations = list(range(len(curve["mean"])))
    ax.plot(generations, curve["mean"], marker="o", ms=2.5, lw=1.4, color=colour, label=label, ls="--" if dashed else "-")
    if all(v is not None for v in curve["low"]):
        ax.fill_between(generations, curve["low"], curve["high"], color=colour, alpha=0.15, linewidth=0)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata=PNG_METADATA)
    plt.close(fig)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_figure(task: Mapping[str, Any], entries: Sequence[Mapping[str, Any]], palette: Mapping[str, Any], path: Path) -> None:
    """Held-out loss and L_g/L_0 per generation for every entry on ``task``."""
    plt = _pyplot()
    fig, (ax_loss, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for entry in entries:
        row = entry["tasks"][task["name"]]
        dashed = entry["track"] != "standard"
        label = f"{entry['name']} (n={len(row['seeds'])})"
        _draw(ax_loss, row["curve"], palette[entry["name"]], label, dashed)
        _draw(ax_ratio, row["ratio_curve"], palette[entry["name"]], label, dashed)
    ax_loss.set_title(f"{task['name']}: held-out loss, mean and 95% CI over seeds", fontsize=10)
    label = textwrap.fill(f"{task['loss_unit']} (lower is better)", width=45)
    ax_loss.set_ylabel(label, fontsize=8)
    ax_ratio.set_title("collapse ratio L_g / L_0", fontsize=10)
    ax_ratio.axhline(1.0, color="grey", lw=0.8, ls=":")
    for ax in (ax_loss, ax_ratio):
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.legend(fontsize=7, ncol=2)
    _save(fig, path)


def metrics_figure(
    task: Mapping[str, Any], entries: Sequence[Mapping[str, Any]], palette: Mapping[str, Any], path: Path
) -> list[str]:
    """Small multiples of the secondary metrics; returns the metrics drawn (none: no file)."""
    names = sorted({m for entry in entries for m in entry["tasks"][task["name"]]["metrics"]})
    if not names:
        return []
    plt = _pyplot()
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.8 * columns, 3.0 * rows), squeeze=False, constrained_layout=True)
    for ax, metric in zip(axes.flat, names):
        for entry in entries:
            found = entry["tasks"][task["name"]]["metrics"].get(metric)
            if found is not None:
                _draw(ax, found["curve"], palette[entry["name"]], entry["name"], entry["track"] != "standard")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("generation", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=6)
    _save(fig, path)
    return names
