"""The one plotting module: the figures of ``collapselab report`` and of the leaderboard site.

Every curve is a :class:`Series`: a mean per generation over seeds with its 95% band (or no
band: a theory curve, a single seed). The figures:

- :func:`curves_figure`: held-out loss and collapse ratio L_g/L_0 per generation, one series per
  strategy or entry (the report's figure per setting, the site's figure per task);
- :func:`metrics_figure`: small multiples of the secondary metrics;
- :func:`overview_figure`: every entry's score on every task, one row per entry and one column per
  task on one shared score axis (a forest plot: the site's index);
- :func:`share_figure`: score against synthetic share, the frontier marked, the fresh data loop's entries joined (the site's task pages);
- :func:`cost_figure`: score against time relative to replace, each track's cost frontier marked
  (the site's task pages).

Legends sit outside the axes (below them), so they never cover a curve; a caller with many
series draws a selection (the site: the best entries and the reference).

An axis gets a logarithmic scale when asked (``log=True``) and its curves are positive and span
at least a factor :data:`DECADE` (:func:`spans_decades`); the site draws both versions and lets
the reader switch. PNGs are written without a timestamp or software tag, so the same numbers
give the same bytes; that makes figures content-keyed (:func:`_cached`): a figure drawn before with
the same arguments, plotting code and matplotlib is copied from the cache (``figures/`` under
``$COLLAPSELAB_CACHE``) instead of drawn again, so a rebuilt site redraws only what changed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec

from collapselab.storage.atomic import atomic_write_bytes
from collapselab.toolkit import cache

P = ParamSpec("P")
PNG_METADATA = {"Software": None}
DECADE = 10.0
DPI = 110
LEGEND_COLUMNS = 4


@dataclass(frozen=True)
class Series:
    """One curve: ``band`` holds ``mean`` and (optionally) ``low``/``high`` per generation."""

    label: str
    colour: Any
    band: Mapping[str, Sequence[float | None]]
    dashed: bool = False
    markers: bool = True
    marker: str = "o"


@dataclass(frozen=True)
class Point:
    """One entry's score (mean and 95% interval, ``None`` bounds: unbounded) at ``x``: its synthetic
    share (:func:`share_figure`) or its cost (:func:`cost_figure`)."""

    label: str
    colour: Any
    marker: str
    x: float
    score: float
    low: float | None
    high: float | None
    frontier: bool = False
    hollow: bool = False


def colours(names: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per name (sorted), so an entry or task keeps its colour on every figure."""
    import matplotlib

    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: palette(index % palette.N) for index, name in enumerate(sorted(names))}


def _values(series: Sequence[Series]) -> list[float]:
    return [float(v) for s in series for key in ("mean", "low", "high") for v in s.band.get(key) or () if v is not None]


def spans_decades(series: Sequence[Series]) -> bool:
    """Whether the curves are all positive and their largest value is at least DECADE times the smallest."""
    values = _values(series)
    return bool(values) and min(values) > 0 and max(values) / min(values) >= DECADE


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)


def _write(data: bytes, where: Path) -> None:
    where.write_bytes(data)


@functools.cache
def _code_sha256() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _cached(draw: Callable[P, None]) -> Callable[P, None]:
    """``draw`` (a figure function that writes its PNG to ``path``) through the content-keyed cache: the
    key is its name, the SHA-256 of its other arguments' repr (exact for floats), of this module's
    source and matplotlib's version."""
    signature = inspect.signature(draw)

    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> None:
        import matplotlib

        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        path = Path(bound.arguments["path"])
        others = sorted((name, value) for name, value in bound.arguments.items() if name != "path")
        arguments = hashlib.sha256(repr(others).encode()).hexdigest()
        key = {"figure": draw.__name__, "arguments_sha256": arguments, "plots_sha256": _code_sha256(),
               "matplotlib": matplotlib.__version__}

        def build() -> bytes:
            draw(*bound.args, **bound.kwargs)
            return path.read_bytes()

        png = cache.cached("figures", key, ".png", build, _write, lambda where: where.read_bytes())
        if not path.is_file() or path.read_bytes() != png:
            atomic_write_bytes(path, png)

    return drawn


def _draw(ax: Any, series: Series) -> None:
    mean = list(series.band["mean"])
    generations = list(range(len(mean)))
    ax.plot(generations, mean, marker=series.marker if series.markers else None, ms=3, lw=1.4, color=series.colour,
            label=series.label, ls="--" if series.dashed else "-")
    low, high = series.band.get("low"), series.band.get("high")
    if low is not None and high is not None and len(low) == len(mean) and all(v is not None for v in [*low, *high]):
        ax.fill_between(generations, low, high, color=series.colour, alpha=0.15, linewidth=0)


def _axis(ax: Any, series: Sequence[Series], log: bool, title: str, fontsize: float = 10) -> None:
    for one in series:
        _draw(ax, one)
    logarithmic = log and spans_decades(series)
    if logarithmic:
        ax.set_yscale("log")
    ax.set_title(title + (" (log scale)" if logarithmic else ""), fontsize=fontsize)
    ax.set_xlabel("generation", fontsize=8 if fontsize < 10 else None)
    ax.grid(alpha=0.3, which="both" if logarithmic else "major")
    ax.xaxis.get_major_locator().set_params(integer=True)


def _figure_legend(fig: Any, axes: Sequence[Any], fontsize: float, where: str = "lower", columns: int = LEGEND_COLUMNS) -> None:
    """One legend for the curves of ``axes`` (each label once), outside the axes (``where``: above
    or below them), so it never covers a curve."""
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc=f"outside {where} center", ncol=min(len(legend), columns),
                   fontsize=fontsize, frameon=False)


@_cached
def curves_figure(
    title: str,
    loss_unit: str,
    loss: Sequence[Series],
    ratio: Sequence[Series],
    path: Path,
    log: bool = False,
    subtitle: str | None = None,
) -> None:
    """Held-out loss (left) and collapse ratio L_g/L_0 (right) per generation."""
    plt = _pyplot()
    fig, (ax_loss, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    _axis(ax_loss, loss, log, f"{title}: held-out loss, mean and 95% CI over seeds")
    ax_loss.set_ylabel(textwrap.fill(f"{loss_unit} (lower is better)", width=45), fontsize=8)
    _axis(ax_ratio, ratio, log, "collapse ratio L_g / L_0")
    ax_ratio.axhline(1.0, color="grey", lw=0.8, ls=":")
    _figure_legend(fig, [ax_loss], fontsize=7)
    if subtitle:
        fig.suptitle(subtitle, fontsize=9)
    _save(fig, path)


def metrics_figure(metrics: Mapping[str, Sequence[Series]], path: Path, log: bool = False) -> list[str]:
    """Small multiples, one panel per secondary metric; returns the metrics drawn (none: no file)."""
    names = sorted(metrics)
    if names:
        _metrics_panels(metrics, path, log)
    return names


@_cached
def _metrics_panels(metrics: Mapping[str, Sequence[Series]], path: Path, log: bool) -> None:
    names = sorted(metrics)
    plt = _pyplot()
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.8 * columns, 3.0 * rows), squeeze=False, constrained_layout=True)
    for ax, metric in zip(axes.flat, names):
        _axis(ax, metrics[metric], log, metric, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    _figure_legend(fig, list(axes.flat), fontsize=6, columns=min(LEGEND_COLUMNS, 2 * columns))
    _save(fig, path)


@dataclass(frozen=True)
class Row:
    """One entry of the overview: its label, style, group (the track) and per task its score as
    (mean, 95% low, 95% high), or a short text saying why there is none."""

    label: str
    colour: Any
    marker: str
    group: str
    scores: Mapping[str, tuple[float, float | None, float | None] | str]
    hollow: bool = False


#: The overview's score axis: wide enough for the baselines' scores, clipped beyond (arrows mark clipped intervals).
OVERVIEW_LIMITS = (-0.5, 1.5)


@_cached
def overview_figure(tasks: Sequence[str], rows: Sequence[Row], path: Path) -> None:
    """A forest plot: one row per entry (under a heading per group, the track, in the order given),
    one column per task, each entry's score with its 95% interval on the same score axis in every
    column (0 = replace, 1 = no degradation), so modalities compare on one scale. Intervals beyond
    the axis end in an arrow; an unbounded side runs to the edge."""
    plt = _pyplot()
    low_limit, high_limit = OVERVIEW_LIMITS
    lines: list[Row | str] = []  # top to bottom: a group's heading, then its rows
    for row in rows:
        if not lines or (isinstance(lines[-1], Row) and lines[-1].group != row.group):
            lines.append(row.group)
        lines.append(row)
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.6 * len(tasks) + 2.2, 1.2 + 0.28 * len(lines)), sharey=True,
                             squeeze=False, constrained_layout=True)
    positions = list(range(len(lines)))[::-1]
    for ax, task in zip(axes[0], tasks):
        ax.axvspan(low_limit, 0.0, color="#f2f2f2", zorder=0)
        for x, style in ((0.0, "-"), (1.0, ":")):
            ax.axvline(x, color="grey", lw=0.8, ls=style, zorder=1)
        for y, line in zip(positions, lines):
            if isinstance(line, str):
                ax.axhline(y + 0.5, color="black", lw=0.6)
                continue
            value = line.scores.get(task, "not run")
            if isinstance(value, str):
                ax.text(0.5, y, value, fontsize=6.5, color="#888888", ha="center", va="center")
                continue
            mean, low, high = value
            left = low_limit if low is None else max(low, low_limit)
            right = high_limit if high is None else min(high, high_limit)
            ax.plot([left, right], [y, y], color=line.colour, lw=1.3, zorder=2)
            for end, clipped, arrow in ((left, low is None or low < low_limit, "<"), (right, high is None or high > high_limit, ">")):
                if clipped:
                    ax.plot([end], [y], marker=arrow, ms=4, color=line.colour, zorder=2)
            shown = min(max(mean, low_limit), high_limit)
            ax.plot([shown], [y], marker=line.marker, ms=6, color=line.colour, mfc="white" if line.hollow else line.colour,
                    mec=line.colour, zorder=3)
        ax.set_xlim(low_limit, high_limit)
        ax.set_title(task, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="x")
        ax.set_xlabel("score", fontsize=8)
    first = axes[0][0]
    first.set_yticks(positions, [line if isinstance(line, str) else line.label for line in lines], fontsize=7.5)
    for label, line in zip(first.get_yticklabels(), lines):
        if isinstance(line, str):
            label.set_fontweight("bold")
    first.set_ylim(-0.7, len(lines) - 0.3)
    fig.suptitle("Score per task, mean and 95% interval over seeds (0 = replace, 1 = no degradation; "
                 f"axis clipped to {low_limit:g}..{high_limit:g})", fontsize=9)
    _save(fig, path)


@_cached
def share_figure(title: str, points: Sequence[Point], ceilings: Sequence[Point], path: Path, caption: str = "",
                 fresh: Sequence[Point] = ()) -> None:
    """Score against synthetic share: one marker per entry with its 95% interval (hollow: extra
    compute), the frontier's entries ringed and joined per compute flag, each ceiling (an entry that trained on no synthetic item) a marker
    at share 0 and a dotted line across. ``fresh``: entries of the fresh data loop, joined by a solid
    grey line in share order (the dose of new real data per generation, Alemohammad et al. 2024), never on the frontier."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6), constrained_layout=True)
    for ceiling in ceilings:
        ax.axhline(ceiling.score, color=ceiling.colour, lw=0.9, ls=":")
    if len(fresh) > 1:
        line = sorted(fresh, key=lambda p: p.x)
        ax.plot([100 * p.x for p in line], [p.score for p in line], color="#999999", lw=1.0, zorder=1,
                label="fresh-data loop (new real data)")
    for point in [*ceilings, *points, *fresh]:
        yerr = None
        if point.low is not None and point.high is not None:
            yerr = [[point.score - point.low], [point.high - point.score]]
        ax.errorbar([100 * point.x], [point.score], yerr=yerr, fmt=point.marker, ms=7, color=point.colour,
                    mfc="none" if point.hollow else point.colour, mec=point.colour, elinewidth=1, capsize=2, label=point.label)
    for hollow in (False, True):  # one frontier per compute flag
        front = sorted((p for p in points if p.frontier and p.hollow == hollow), key=lambda p: p.x)
        if len(front) > 1:
            ax.plot([100 * p.x for p in front], [p.score for p in front], color="black", lw=0.8, ls="--", zorder=1)
    front = [p for p in points if p.frontier]
    if front:
        ax.scatter([100 * p.x for p in front], [p.score for p in front], s=170, facecolors="none", edgecolors="black",
                   linewidths=1.2, zorder=3, label="on the frontier")
    ax.set_xlabel("synthetic share of the examples trained on (%)", fontsize=9)
    ax.set_ylabel("score (1 = no degradation, 0 = replace)", fontsize=9)
    ax.set_xlim(-4, 104)
    ax.set_title(f"{title}: score against synthetic share" + (f"\n{caption}" if caption else ""), fontsize=10)
    ax.grid(alpha=0.3)
    _figure_legend(fig, [ax], fontsize=7, columns=3)
    _save(fig, path)


#: Where the cost axis has ticks (times relative to replace), within the drawn range.
COST_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0, 20.0, 50.0, 100.0)
#: The ticks of a cost axis spanning more than a factor 3 (the fine ones would crowd).
WIDE_COST_TICKS = (0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: Line styles of each track's cost frontier (:func:`cost_figure`).
FRONTIER_STYLES = ("--", ":", "-.")


@_cached
def cost_figure(title: str, points: Mapping[str, Sequence[Point]], reference: Point | None, path: Path) -> None:
    """Score against cost (``x``: time relative to replace, log axis): one marker per entry with its
    95% interval (hollow: extra compute), per track (``points``: track -> its points) the entries on
    its cost frontier ringed and joined, and replace (``reference``) at (1, 0)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6), constrained_layout=True)
    everything = [p for track in points.values() for p in track] + ([reference] if reference else [])
    for point in everything:
        yerr = None
        if point.low is not None and point.high is not None:
            yerr = [[point.score - point.low], [point.high - point.score]]
        ax.errorbar([point.x], [point.score], yerr=yerr, fmt=point.marker, ms=7, color=point.colour,
                    mfc="none" if point.hollow else point.colour, mec=point.colour, elinewidth=1, capsize=2, label=point.label)
    for (track, members), style in zip(sorted(points.items()), FRONTIER_STYLES):
        front = sorted((p for p in members if p.frontier), key=lambda p: p.x)
        if front:
            ax.plot([p.x for p in front], [p.score for p in front], color="black", lw=0.8, ls=style, zorder=1,
                    label=f"cost frontier, {track}")
            ax.scatter([p.x for p in front], [p.score for p in front], s=170, facecolors="none", edgecolors="black",
                       linewidths=1.0, zorder=3)
    xs = [p.x for p in everything]
    ax.set_xscale("log")
    low, high = min(xs) / 1.25, max(xs) * 1.25
    ax.set_xlim(low, high)
    ticks = [t for t in (COST_TICKS if high / low < 3 else WIDE_COST_TICKS) if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("time per generation relative to replace (log scale; units of a standard fit)", fontsize=9)
    ax.set_ylabel("score (1 = no degradation, 0 = replace)", fontsize=9)
    ax.set_title(f"{title}: score against cost", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    _figure_legend(fig, [ax], fontsize=7, columns=3)
    _save(fig, path)
