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
non-zero (then no interval is reported). Means over seeds get Student-t intervals. What a seed
varies is stated per task, and the intervals speak for exactly that: in the regression task a
seed draws the design, the truth and the noise (every source of variance it has), so the
between-seed variance contains the Monte-Carlo error of a task that averages trials inside a
run (its ``loss_se``, the Monte-Carlo error given the seed's design, is reported beside, not
pooled into the interval); in the neural tasks a seed varies the initialisation, the minibatch
order and the sampling, while the real data (the split of a fixed dataset, made by the task's
``split_seed`` / ``data_seed``) are the same for every seed, so their intervals do not cover
another draw of the real pool.

The degradation gate: a task enters an entry's overall score only where replace degrades, by a
one-sided Student t-test of H0: E[B_s] <= 0 against E[B_s] > 0 at level ``GATE_LEVEL`` = 0.025
on n - 1 degrees of freedom (t = mean_s B_s / its standard error > t_{0.975, n-1}: 4.30 at 3 seeds,
2.26 at 10). The level is chosen to be the one the score's interval already uses: a 95% Fieller
interval is bounded exactly when its denominator passes this test, so a task is ranked exactly
when replace's degradation is positive and every score on it has a bounded 95% interval. Each
task's contribution is clipped to [-1, 1], so no task dominates the mean. The overall interval
combines the per-task standard errors (delta method for the ratio) with Welch-Satterthwaite
degrees of freedom (Welch 1947).

Tracks are the loops of the literature (Alemohammad et al. 2024, "Self-Consuming Generative
Models Go MAD", ICLR, Sec. 3), assigned from what a run's records show it trained on
(``composition`` of generations 1..G), never from what a strategy declares:

- ``closed-loop`` (their fully synthetic loop): no real item is trained on after generation 0
  (replace, accumulate-synthetic, verifier filtering, reward curation without real data);
- ``augmentation`` (their synthetic augmentation loop): the fixed real pool plus synthetic data
  (accumulate, accumulate-subsample, mix, self-correction). ``real-only`` (the real pool every
  generation) is its ceiling; every entry reports its synthetic share, and an entry whose records
  show no synthetic item trained on answers no question about synthetic data: shown, not ranked;
- ``fresh-data`` (their fresh data loop): new real data each generation (``fresh_real`` > 0).

A task section's track is the one of its seeds that used the most real data (fresh-data, then
augmentation, then closed-loop), and so is an entry's over its tasks: an entry is never compared
with entries that had less real data than it used somewhere.

Synthetic share (:func:`synthetic_share`): the share of the examples a run's fits processed over
generations 1..G that were synthetic items. Every fit draws its examples uniformly from the items
of its pool (minibatches in the neural tasks, the budget draw in the regression task), so a fit
spends on synthetic items the share of its pool they make up; generations are weighted by the
examples each fit processed.

Extra compute is a flag on every row, orthogonal to the tracks, not a track of its own: spending
more compute is a choice about how long to train, independent of the loop, and a track of its own
would rank a closed-loop entry against an augmentation one, the comparison the tracks exist to
prevent. A run uses extra compute when any fit after generation 0 processed more examples or took
more optimiser steps than generation 0's fit, which the loop makes with the task's defaults: the
task's budget (optimiser steps x batch size for the neural tasks, examples per fit for the
regression task). Within a track, entries with the flag are ranked only against each other.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from collapselab.formats.records import Record

CONFIDENCE = 0.95
#: Level of the degradation gate's one-sided t-test (see the module docstring for why 0.025).
GATE_LEVEL = 0.025
CLIP = 1.0
CLOSED_LOOP, AUGMENTATION, FRESH_DATA = "closed-loop", "augmentation", "fresh-data"
#: The tracks, from the least real data to the most.
TRACKS = (CLOSED_LOOP, AUGMENTATION, FRESH_DATA)
TRACK_DESCRIPTIONS = {
    CLOSED_LOOP: "The fully synthetic loop (Alemohammad et al. 2024): after generation 0 no real item is trained on.",
    AUGMENTATION: "The synthetic augmentation loop (Alemohammad et al. 2024): the fixed real pool plus synthetic data. "
                  "Training on the real pool alone (real-only) is its ceiling, shown and not ranked; the synthetic "
                  "share says how much of each entry's training was synthetic.",
    FRESH_DATA: "The fresh data loop (Alemohammad et al. 2024): new real data every generation, beyond the real pool.",
}
EXTRA_COMPUTE_NOTE = "Entries that spend more compute per fit than the task's budget, ranked only against each other."
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
    """Replace's excess area over seeds and the gate on it: a one-sided t-test of mean > 0 at
    ``GATE_LEVEL`` on n - 1 degrees of freedom (the score's denominator)."""

    mean: float
    se: float
    n: int

    @property
    def df(self) -> int:
        return self.n - 1

    @property
    def t(self) -> float:
        """mean / se (infinite for a positive mean with no spread; 0 without a standard error)."""
        if self.se == 0.0:
            return math.inf if self.mean > 0 else 0.0
        return self.mean / self.se if math.isfinite(self.se) else 0.0

    @property
    def p_value(self) -> float | None:
        """The one-sided p-value of H0: mean <= 0 (``None`` with fewer than 2 seeds)."""
        if self.df < 1:
            return None
        return float(stats.t.sf(self.t, self.df)) if math.isfinite(self.t) else 0.0

    @property
    def significant(self) -> bool:
        if self.df < 1 or not self.mean > 0:
            return False
        return self.t > float(stats.t.ppf(1.0 - GATE_LEVEL, self.df))

    def text(self) -> str:
        """The gate's verdict in words, with its statistic, degrees of freedom and level."""
        if self.df < 1:
            return f"one-sided t-test of replace's degradation not possible with {self.n} seed (it needs 2 or more)"
        verdict = "passes" if self.significant else "fails"
        return (f"one-sided t-test of replace's mean excess loss > 0: t = {self.t:.3g} on {self.df} degrees of "
                f"freedom, p = {self.p_value:.2g}; {verdict} at level {GATE_LEVEL}")

    def as_dict(self) -> dict[str, Any]:
        t = self.t
        return {"mean": self.mean, "se": self.se if math.isfinite(self.se) else None, "n": self.n, "df": self.df,
                "t": t if math.isfinite(t) else None, "p_value": self.p_value, "level": GATE_LEVEL,
                "significant": self.significant, "test": self.text()}


def degradation(replace_curves: Mapping[int, Sequence[float]]) -> Degradation:
    """Replace's mean excess area over seeds with its standard error (infinite for one seed)."""
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


def run_track(records: Sequence[Record]) -> str:
    """The loop one run was in, from its records' composition of generations 1..G."""
    if any(r.composition.fresh_real > 0 for r in records):
        return FRESH_DATA
    if any(r.composition.real > 0 for r in records[1:]):
        return AUGMENTATION
    return CLOSED_LOOP


def combine_tracks(tracks: Iterable[str]) -> str:
    """The track of several runs (or task sections): the one that used the most real data."""
    return max(tracks, key=TRACKS.index, default=CLOSED_LOOP)


def track(runs: Iterable[Sequence[Record]]) -> str:
    """The track of the runs (each a list of generation records) of one task section."""
    return combine_tracks(run_track(records) for records in runs)


def uses_extra_compute(records: Sequence[Record]) -> bool:
    """True when a fit after generation 0 processed more examples or took more optimiser steps than
    generation 0's, which the loop fits with the task's defaults: the task's budget."""
    if not records:
        return False
    budget = records[0].compute
    return any(r.compute.examples > budget.examples * (1 + BUDGET_TOLERANCE)
               or r.compute.steps > budget.steps * (1 + BUDGET_TOLERANCE) for r in records[1:])


def synthetic_share(records: Sequence[Record]) -> float | None:
    """The share of the examples processed by the fits of generations 1..G that were synthetic items:
    per generation the synthetic share of the pool (fits draw their examples uniformly from its
    items), weighted by the examples the fit processed (equally, if no fit counts examples).
    ``None`` for a run without synthetic generations."""
    shares, spent = [], []
    for record in records[1:]:
        total = record.composition.total
        if total > 0:
            shares.append(sum(record.composition.synthetic.values()) / total)
            spent.append(float(record.compute.examples))
    if not shares:
        return None
    if sum(spent) <= 0:
        return float(np.mean(shares))
    return float(np.dot(shares, spent) / sum(spent))


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


#: Curves of one run agree to this relative tolerance on any machine (float64 closed-form fits on
#: another BLAS kernel differ in the last bits, about 1e-14): closer curves are the same run.
SAME_RUN_RTOL = 1e-9


def curves_agree(a: Sequence[float], b: Sequence[float], rtol: float = SAME_RUN_RTOL) -> bool:
    """Whether two curves have the same length and agree value by value within ``rtol`` of the
    larger magnitude (``rtol=0``: bit for bit)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return x.shape == y.shape and bool(np.all(np.abs(x - y) <= rtol * np.maximum(np.abs(x), np.abs(y))))
