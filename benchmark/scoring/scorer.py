"""The scorer: collapse ratios, summaries over seeds, and the normalised score.

Per run, the primary-metric curve L_0..L_G and the collapse ratio r_g = L_g / L_0. Per task
and strategy, over seeds: mean, standard deviation (ddof=1) and a percentile-bootstrap 95%
confidence interval (Efron & Tibshirani 1993; scipy.stats.bootstrap). The normalised score

    s = (L_G[replace] - L_G[strategy]) / (L_G[replace] - L_0)

is 0 for a strategy as bad as replace, 1 for no degradation from generation 0 and above 1
for a strategy that beats the real-data model. Generation 0 is the same fit for every
strategy under one seed, so scores pair runs by seed where both strategies have it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation (ddof=1) and bootstrap 95% CI of values over seeds."""

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


def summarize(values: Sequence[float]) -> Summary:
    """Summary of ``values`` (one per seed); std and CI need at least two values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot summarise zero values")
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot summarise non-finite values")
    mean = float(x.mean())
    if x.size < 2:
        return Summary(mean, None, None, None, 1)
    if np.all(x == x[0]):  # exactly equal values: no spread (x.std would show rounding noise)
        return Summary(float(x[0]), 0.0, float(x[0]), float(x[0]), int(x.size))
    std = float(x.std(ddof=1))
    result = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=0.95,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    interval = result.confidence_interval
    return Summary(mean, std, float(interval.low), float(interval.high), int(x.size))


def collapse_ratios(curve: Sequence[float]) -> list[float]:
    """r_g = L_g / L_0 for every generation of one run."""
    if len(curve) == 0:
        return []
    base = float(curve[0])
    if base == 0.0:
        return [math.nan if value else 1.0 for value in curve]
    return [float(value) / base for value in curve]


def normalised_score(final_replace: float, final_strategy: float, initial: float) -> float | None:
    """s = (L_G[replace] - L_G[strategy]) / (L_G[replace] - L_0); ``None`` if replace did not degrade."""
    gap = final_replace - initial
    if not gap > 0:
        return None
    return (final_replace - final_strategy) / gap


def paired_scores(
    strategy_runs: Mapping[int, Sequence[float]], replace_runs: Mapping[int, Sequence[float]], generation: int
) -> list[float]:
    """Per-seed normalised scores at ``generation`` for the seeds both strategies ran.

    Each mapping is seed -> loss curve. Seeds where replace did not degrade are skipped.
    """
    scores = []
    for seed in sorted(set(strategy_runs) & set(replace_runs)):
        ours, theirs = strategy_runs[seed], replace_runs[seed]
        if len(ours) <= generation or len(theirs) <= generation:
            continue
        score = normalised_score(theirs[generation], ours[generation], theirs[0])
        if score is not None:
            scores.append(score)
    return scores
