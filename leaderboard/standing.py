"""How sure the board is of its order: rank bands, the best entry per task, and the upper frontier
of score against synthetic share. Pure functions of the numbers the aggregate computed.

Rank band. Given each entry's score and 95% interval, the band is the range of ranks the entry
could hold: from 1 + the number of entries whose interval lies wholly above its own, to the number
of entries whose interval does not lie wholly below its own (itself included). An unbounded
interval overlaps every other. The leader's band is 1..k, k the entries whose intervals overlap
the leader's (itself included), and each of those k shares the leader's first rank unless another
entry's interval lies wholly above its own. A band of one rank is a rank the intervals settle.

Best per task: the entry with the highest score on the task (every entry with that score, if
several); entries whose band on the task starts at 1 without being the best are tied with it. Only
entries that beat the reference can be best or tied: a score at or below ``floor`` (the score of
replace, 0 on the board's scale) is no one's best, however it ranks among the others. An entry
alone is not marked: best needs something to be better than.

Upper frontier of score against synthetic share: an entry is on it when no other entry has a score
at least as high with a synthetic share at least as high (one of them strictly higher). It is the
trade-off curve of the augmentation loop: for each amount of synthetic data, the best score any
entry reached with at least that much. Means are compared, not intervals; shares within
:data:`SHARE_TOLERANCE` of each other count as equal (a share is a mean over seeds of random
draws: accumulate-subsample's 80% is 79.8% or 80.2% depending on the draws).

Cost frontier (the Pareto front of score against cost): an entry is on it when no other entry has
a score at least as high at a cost at most as high (one of them strictly). For each budget, the
best score reached within it. Costs are measured times (about 1% apart between entries that do
the same work, in units of a standard fit), so costs within :data:`COST_TOLERANCE` of each other
(relative) count as equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

#: Times (relative to replace) within this fraction of each other count as the same cost on the cost frontier.
COST_TOLERANCE = 0.05
#: Synthetic shares closer than this (one percentage point) count as the same share on the frontier.
SHARE_TOLERANCE = 0.01


def _bounds(summary: Mapping[str, Any]) -> tuple[float, float]:
    low, high = summary.get("ci_low"), summary.get("ci_high")
    return (-math.inf if low is None else float(low)), (math.inf if high is None else float(high))


def rank_bands(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """name -> (best, worst) rank consistent with the intervals (``scores``: name -> mean, ci_low, ci_high)."""
    bounds = {name: _bounds(summary) for name, summary in scores.items()}
    bands = {}
    for name, (low, high) in bounds.items():
        above = sum(1 for other, (other_low, _) in bounds.items() if other != name and other_low > high)
        below = sum(1 for other, (_, other_high) in bounds.items() if other != name and other_high < low)
        bands[name] = (1 + above, len(bounds) - below)
    return bands


def band_text(band: tuple[int, int]) -> str:
    """'3' for a settled rank, '1–3' for a band."""
    best, worst = band
    return str(best) if best == worst else f"{best}–{worst}"


def best_on_task(scores: Mapping[str, Mapping[str, Any]], floor: float | None = None) -> dict[str, list[str]]:
    """``best``: the entries with the highest score; ``tied``: the others whose band starts at 1 (sorted
    names); with ``floor``, only among the entries scoring above it."""
    above = {name: summary for name, summary in scores.items() if floor is None or float(summary["mean"]) > floor}
    if not above or len(scores) < 2:
        return {"best": [], "tied": []}
    top = max(float(summary["mean"]) for summary in above.values())
    best = sorted(name for name, summary in above.items() if float(summary["mean"]) == top)
    bands = rank_bands(scores)
    tied = sorted(name for name in above if bands[name][0] == 1 and name not in best)
    return {"best": best, "tied": tied}


def _pareto_front(points: Mapping[str, tuple[float, float]], no_worse: Callable[[float, float], bool],
                  better: Callable[[float, float], bool]) -> list[str]:
    """The names (sorted) of the points (x, score) that no other point dominates: an x ``no_worse``
    than the point's and a score at least as high, one of them strictly (x ``better``, or a higher score)."""
    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return no_worse(a[0], b[0]) and a[1] >= b[1] and (a[1] > b[1] or better(a[0], b[0]))

    return sorted(name for name, point in points.items()
                  if not any(dominates(other, point) for other_name, other in points.items() if other_name != name))


def upper_frontier(points: Mapping[str, tuple[float, float]], tolerance: float = SHARE_TOLERANCE) -> list[str]:
    """The points (synthetic share, score) on the upper frontier: no other has a share at least as high
    (within the absolute ``tolerance``) and a score at least as high, one strictly."""
    return _pareto_front(points, lambda a, b: a >= b - tolerance, lambda a, b: a > b + tolerance)


def cost_frontier(points: Mapping[str, tuple[float, float]], tolerance: float = COST_TOLERANCE) -> list[str]:
    """The points (cost, score) on the cost frontier: no other has a cost at most as high (within the
    relative ``tolerance``) and a score at least as high, one strictly."""
    return _pareto_front(points, lambda a, b: a <= b * (1 + tolerance), lambda a, b: a * (1 + tolerance) < b)
