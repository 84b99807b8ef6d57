"""The scorer: the one place where curves become scores, intervals and tracks.

Used alike by ``collapselab report``, the leaderboard and ``reproduce``.

Per run: the primary-metric curve L_0..L_G and the collapse ratio r_g = L_g / L_0.

Per task and strategy, over seeds s, paired with ``replace`` by seed (generation 0 is the
same fit for every strategy of a seed, so L_0 is shared):

    A_s = sum_{g=1..G} (L_g[strategy, s] - L_0[s])      the strategy's excess loss over the curve
    B_s = sum_{g=1..G} (L_g[replace, s]  - L_0[s])      replace's
    S   = 1 - mean_s A_s / mean_s B_s

S is 0 for a strategy as bad as replace and 1 for no degradation from generation 0; it uses
the whole curve, not the last generation only, and the ratio of means is far less noisy than
a mean of per-seed ratios when replace's degradation varies between seeds.

Intervals must be valid at 3 seeds, where a percentile bootstrap cannot reach beyond the
observed values. The interval of S is Fieller's (Fieller 1954, "Some problems in interval
estimation", JRSS B 16:175) for the ratio of the paired means with Student's t quantile on
n - 1 degrees of freedom: exact when (A_s, B_s) are bivariate normal, it widens as the
denominator becomes uncertain and is unbounded when replace's degradation is not clearly
non-zero (then no interval is reported). Means over seeds get Student-t intervals. A seed
carries every source of variance of its task (the regression task's design, truth and noise
included), so the between-seed variance contains the Monte-Carlo error of a task that averages
trials inside a run; the regression task's ``loss_se`` (its Monte-Carlo error given the
seed's design) is reported beside, not pooled into the interval.

A task enters an entry's overall score only where replace's degradation is significant
(mean_s B_s above ``SIGNIFICANCE`` = 5 standard errors), and each task's contribution is
clipped to [-1, 1], so no task dominates the mean. The overall interval combines the
per-task standard errors (delta method for the ratio) with Welch-Satterthwaite degrees of
freedom (Welch 1947). Tracks: ``standard`` (the task's real pool, the standard compute
budget), ``extra compute`` (more optimiser steps than the budget), ``extra real data``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

CONFIDENCE = 0.95
SIGNIFICANCE = 5.0
CLIP = 1.0
STANDARD, EXTRA_COMPUTE, EXTRA_REAL_DATA = "standard", "extra compute", "extra real data"
TRACKS = (STANDARD, EXTRA_COMPUTE, EXTRA_REAL_DATA)
BUDGET_TOLERANCE = 1e-6


@functools.lru_cache(maxsize=256)
def _t(df: float, confidence: float = CONFIDENCE) -> float:
    """Student t's two-sided ``confidence`` quantile (cached: summaries ask for the same few degrees of freedom)."""
    return float(stats.t.ppf(0.5 + confidence / 2, df))


@dataclass(frozen=True)
class Summary:
    """Mean over seeds with its standard deviation (ddof=1) and a ``CONFIDENCE`` interval."""

    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    def format(self, digits: int = 4) -> str:
        if self.std is None:
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} ± {self.std:.2g}"


def _finite(values: ArrayLike) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot summarise zero values")
    if not np.isfinite(x).all():
        raise ValueError("cannot summarise non-finite values")
    return x


def summarize(values: ArrayLike) -> Summary:
    """Mean of per-seed ``values`` with a Student-t interval over seeds (n - 1 degrees of freedom)."""
    x = _finite(values)
    if (x == x[0]).all():
        return Summary(float(x[0]), 0.0 if x.size > 1 else None, float(x[0]), float(x[0]), int(x.size))
    mean = float(x.mean())
    if x.size < 2:
        return Summary(mean, None, None, None, 1)
    std = float(x.std(ddof=1))
    half = _t(x.size - 1) * std / math.sqrt(x.size)
    return Summary(mean, std, mean - half, mean + half, int(x.size))


def collapse_ratios(curve: Sequence[float]) -> list[float]:
    """r_g = L_g / L_0 for every generation of one run (L_0 > 0: the task's metric bounds)."""
    if len(curve) == 0:
        return []
    base = float(curve[0])
    if not base > 0:
        raise ValueError(f"L_0 = {base}: collapse ratios need a positive generation-0 loss")
    return [float(value) / base for value in curve]


def excess_area(curve: Sequence[float]) -> float:
    """sum_{g=1..G} (L_g - L_0): the excess loss over the whole curve."""
    values = np.asarray(curve, dtype=np.float64)
    return float(np.sum(values[1:] - values[0]))


@dataclass(frozen=True)
class Degradation:
    """Replace's excess area over seeds and whether it is significant (the score's denominator)."""

    mean: float
    se: float
    n: int

    @property
    def significant(self) -> bool:
        if not self.mean > 0:
            return False
        return self.se == 0.0 or self.mean / self.se > SIGNIFICANCE


def degradation(replace_curves: Mapping[int, Sequence[float]]) -> Degradation:
    areas = np.array([excess_area(c) for _, c in sorted(replace_curves.items())])
    se = float(areas.std(ddof=1) / math.sqrt(areas.size)) if areas.size > 1 else math.inf
    return Degradation(float(areas.mean()), se, int(areas.size))


@dataclass(frozen=True)
class Score:
    """S = 1 - mean A / mean B over the seeds both strategies ran, with Fieller's interval
    (``None`` bounds when the interval is unbounded) and a delta-method standard error."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    se: float
    n: int
    seeds: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, float | int | None | list[int]]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "se": self.se, "n": self.n,
                "seeds": self.seeds}


def fieller(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Fieller's interval for mean(a) / mean(b) from paired samples (t on n - 1 df); ``(None, None)``
    when it is unbounded (the denominator is not significantly non-zero)."""
    n = a.size
    if n < 2:
        return None, None
    t2 = _t(n - 1, confidence) ** 2
    cov = np.cov(np.vstack([a, b]), ddof=1) / n
    ma, mb = float(a.mean()), float(b.mean())
    qa = mb * mb - t2 * cov[1, 1]
    qb = -2.0 * (ma * mb - t2 * cov[0, 1])
    qc = ma * ma - t2 * cov[0, 0]
    disc = qb * qb - 4.0 * qa * qc
    if qa <= 0 or disc < 0:
        return None, None
    root = math.sqrt(disc)
    return (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)


def paired_score(strategy_curves: Mapping[int, Sequence[float]], replace_curves: Mapping[int, Sequence[float]]) -> Score | None:
    """The score of a strategy against replace, over the seeds both have (``None`` if there are none)."""
    seeds = sorted(set(strategy_curves) & set(replace_curves))
    seeds = [s for s in seeds if len(strategy_curves[s]) == len(replace_curves[s])]
    if not seeds:
        return None
    a = np.array([excess_area(strategy_curves[s]) for s in seeds])
    b = np.array([excess_area(replace_curves[s]) for s in seeds])
    mb = float(b.mean())
    if not mb > 0:
        return None
    ratio = float(a.mean()) / mb
    if len(seeds) > 1:
        cov = np.cov(np.vstack([a, b]), ddof=1) / len(seeds)
        variance = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio * ratio * cov[1, 1]) / (mb * mb)
        se = math.sqrt(max(variance, 0.0))
    else:
        se = math.inf
    low, high = fieller(a, b)
    return Score(1.0 - ratio, None if high is None else 1.0 - high, None if low is None else 1.0 - low, se, len(seeds), seeds)


@dataclass(frozen=True)
class Overall:
    """The mean over the significant tasks of the clipped per-task scores, with its interval."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    tasks: list[str]

    def as_dict(self) -> dict[str, float | None | list[str] | int]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "tasks": self.tasks,
                "coverage": len(self.tasks)}


def overall(scores: Mapping[str, Score]) -> Overall | None:
    """Combine per-task scores (already restricted to the significant tasks)."""
    if not scores:
        return None
    names = sorted(scores)
    clipped = [min(CLIP, max(-CLIP, scores[t].mean)) for t in names]
    mean = float(np.mean(clipped))
    parts = [(scores[t].se / len(names)) ** 2 for t in names]
    variance = float(sum(parts))
    if not math.isfinite(variance):
        return Overall(mean, None, None, names)
    if variance == 0.0:
        return Overall(mean, mean, mean, names)
    df = variance**2 / sum(p * p / max(1, scores[t].n - 1) for p, t in zip(parts, names))  # Welch-Satterthwaite
    half = _t(df) * math.sqrt(variance)
    return Overall(mean, mean - half, mean + half, names)


def track(uses_extra_real_data: bool, steps_per_generation: Sequence[int], budget: int | None) -> str:
    """The leaderboard track of one task section: extra real data, extra compute (any fit beyond
    the preset's step budget), or standard."""
    if uses_extra_real_data:
        return EXTRA_REAL_DATA
    if budget is not None and any(steps > budget * (1 + BUDGET_TOLERANCE) for steps in steps_per_generation):
        return EXTRA_COMPUTE
    return STANDARD


def reproduction_tolerance(published: Sequence[float], n_reproduced: int, z: float = 3.0,
                           spread_of: Sequence[float] | None = None) -> float:
    """The largest |difference of means| between published and reproduced seeds that still agrees:
    z * s * sqrt(1/n_published + 1/n_reproduced), s the published standard deviation over seeds
    (a two-sample comparison with both spreads taken as the published one; Welch 1947), and
    never below 1e-9 of the mean. ``spread_of`` (default ``published``) are the values s is
    taken from: every published seed, when ``published`` holds only the seeds re-run (a paired
    comparison, for which the two-sample bound is conservative)."""
    values = _finite(published)
    spread_values = values if spread_of is None else _finite(spread_of)
    floor = 1e-9 * max(abs(float(values.mean())), 1e-300)
    if spread_values.size < 2 or values.size < 1 or n_reproduced < 1:
        return floor
    spread = float(spread_values.std(ddof=1)) * math.sqrt(1.0 / values.size + 1.0 / n_reproduced)
    return max(z * spread, floor)
