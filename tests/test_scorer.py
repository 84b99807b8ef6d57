"""The scorer: scores over the whole curve, intervals that cover at their nominal rate at 3 and 10
seeds (also with the regression task's trials inside each seed), the degradation gate (a one-sided
t-test at its stated level), bounded contributions, and the tracks, extra-compute flag and
synthetic share read from records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collapselab.formats.records import Composition, Compute, Record
from collapselab.scoring import scorer


def test_score_uses_the_whole_curve_paired_by_seed():
    replace = {0: [1.0, 2.0, 3.0], 1: [1.0, 3.0, 5.0], 2: [2.0, 3.0, 4.0]}
    half = {s: [c[0]] + [c[0] + (v - c[0]) / 2 for v in c[1:]] for s, c in replace.items()}
    assert scorer.paired_score(replace, replace).mean == pytest.approx(0.0)
    assert scorer.paired_score(half, replace).mean == pytest.approx(0.5)
    flat = {s: [c[0]] * 3 for s, c in replace.items()}
    assert scorer.paired_score(flat, replace).mean == pytest.approx(1.0)
    # the last generation alone would call these two equal; the curve does not
    early = {s: [c[0], c[2], c[2]] for s, c in replace.items()}
    assert scorer.paired_score(early, replace).mean < 0.0
    only_common = scorer.paired_score({0: half[0], 7: half[1]}, replace)
    assert only_common.seeds == [0] and only_common.n == 1


REPS = 4000


def _binomial_ok(hits: int, reps: int, rate: float, z: float = 4.0) -> bool:
    """``hits`` of ``reps`` is within z binomial standard deviations of ``rate``."""
    return abs(hits / reps - rate) <= z * math.sqrt(rate * (1 - rate) / reps)


def _covered(draw, truth, reps=REPS) -> int:
    """How many of ``reps`` intervals cover ``truth``; an unbounded one (``None`` bounds, reported as
    "unbounded") excludes no value, so it covers."""
    hits = 0
    for _ in range(reps):
        low, high = draw()
        hits += low is None or low <= truth <= high
    return hits


def _score_interval(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    """The score's interval for per-seed areas a (the strategy) and b (replace), through the curves."""
    ours = {s: [1.0, 1.0 + a[s]] for s in range(len(a))}
    replace = {s: [1.0, 1.0 + b[s]] for s in range(len(b))}
    score = scorer.paired_score(ours, replace)
    return score.ci_low, score.ci_high


@pytest.mark.parametrize("seeds", [3, 10])
def test_fieller_interval_covers_the_true_score_at_its_nominal_rate(seeds):
    """A known answer: per-seed areas A, B bivariate normal with mean ratio 0.3, correlated as
    strategies sharing generation 0 are; the 95% interval must cover S = 0.7 at 95%."""
    rng = np.random.default_rng(seeds)
    mu_a, mu_b, sd_a, sd_b, rho = 1.5, 5.0, 0.6, 0.5, 0.6
    cov = [[sd_a**2, rho * sd_a * sd_b], [rho * sd_a * sd_b, sd_b**2]]

    def draw():
        ab = rng.multivariate_normal([mu_a, mu_b], cov, size=seeds)
        return _score_interval(ab[:, 0], ab[:, 1])

    assert _binomial_ok(_covered(draw, 1 - mu_a / mu_b), REPS, scorer.CONFIDENCE)


@pytest.mark.parametrize("seeds", [3, 10])
def test_fieller_interval_covers_with_the_regression_tasks_trials_inside_each_seed(seeds):
    """The regression task's structure: each seed draws its own design, which scales the excess risk
    of every trial of both strategies (they share it), and each run averages 200 Monte-Carlo trials
    of skewed (chi-square) excess risks. The per-seed trial means are the A_s and B_s the score sees;
    the true ratio of their expectations is known, mu_A / mu_B = 0.4."""
    rng = np.random.default_rng(100 + seeds)
    trials, mu_a, mu_b = 200, 0.8, 2.0

    def draw():
        design = rng.gamma(25.0, 1.0 / 25.0, size=seeds)  # the seed's design: mean 1, 20% spread, shared
        own = rng.gamma(25.0, 1.0 / 25.0, size=(2, seeds))  # what else the seed changes in each strategy
        chi = rng.chisquare(3, size=(2, seeds, trials)) / 3  # per-trial excess risks (mean 1)
        a = mu_a * design * own[0] * chi[0].mean(axis=1)
        b = mu_b * design * own[1] * chi[1].mean(axis=1)
        return _score_interval(a, b)

    assert _binomial_ok(_covered(draw, 1 - mu_a / mu_b), REPS, scorer.CONFIDENCE)


@pytest.mark.parametrize("seeds", [3, 10])
def test_t_interval_of_a_mean_covers_at_its_nominal_rate(seeds):
    rng = np.random.default_rng(seeds + 1)

    def draw():
        s = scorer.summarize(rng.normal(2.0, 0.3, size=seeds))
        return s.ci_low, s.ci_high

    assert _binomial_ok(_covered(draw, 2.0), REPS, scorer.CONFIDENCE)


@pytest.mark.parametrize("seeds", [3, 10])
def test_the_gate_is_a_one_sided_t_test_at_its_stated_level(seeds):
    """Under no degradation (E[B_s] = 0) the gate passes at its level, on n - 1 degrees of freedom;
    its text says so; and it passes exactly when the 95% Fieller interval of a score is bounded."""
    rng = np.random.default_rng(200 + seeds)
    passed = 0
    for _ in range(REPS):
        b = rng.normal(0.0, 1.0, size=seeds)
        passed += scorer.degradation({s: [1.0, 1.0 + b[s]] for s in range(seeds)}).significant
    assert _binomial_ok(passed, REPS, scorer.GATE_LEVEL)
    for _ in range(300):
        b = rng.normal(rng.uniform(0.0, 2.0), 1.0, size=seeds)
        drop = scorer.degradation({s: [1.0, 1.0 + b[s]] for s in range(seeds)})
        low, high = scorer.fieller(rng.normal(0.0, 1.0, size=seeds), b)
        assert drop.significant == (b.mean() > 0 and low is not None)
    text = drop.text()
    assert "one-sided t-test" in text and f"on {seeds - 1} degrees of freedom" in text and "level 0.025" in text
    assert "5 standard errors" not in (scorer.__doc__ or "") and "one-sided Student t-test" in (scorer.__doc__ or "")


def test_uncertain_denominator_gives_no_interval_and_fails_the_gate():
    noisy = {0: [1.0, 1.1], 1: [1.0, 0.9], 2: [1.0, 1.05]}
    assert not scorer.degradation(noisy).significant
    assert "fails at level" in scorer.degradation(noisy).text()
    score = scorer.paired_score({0: [1.0, 1.0], 1: [1.0, 1.0], 2: [1.0, 1.0]}, noisy)
    assert score.ci_low is None and score.ci_high is None
    clear = {0: [1.0, 3.0], 1: [1.0, 3.2], 2: [1.0, 2.9]}
    assert scorer.degradation(clear).significant
    # t = 4.5 on 2 degrees of freedom: p = 0.023 < 0.025 (the old "5 standard errors" words refused it)
    edge = scorer.Degradation(4.5, 1.0, 3)
    assert edge.significant and edge.p_value == pytest.approx(0.0230, abs=5e-4)
    assert not scorer.Degradation(4.2, 1.0, 3).significant
    assert not scorer.Degradation(5.0, math.inf, 1).significant  # one seed: no test


def test_overall_clips_each_task_and_combines_standard_errors():
    good = scorer.Score(0.8, 0.7, 0.9, 0.05, 3)
    terrible = scorer.Score(-4.0, -6.0, -2.0, 1.0, 3)
    combined = scorer.overall({"a": good, "b": terrible})
    assert combined.mean == pytest.approx((0.8 - 1.0) / 2)  # -4 counts as -1
    assert combined.ci_low < combined.mean < combined.ci_high
    assert scorer.overall({}) is None


def _record(real: int, synthetic: dict[str, int], fresh: int = 0, examples: int = 100, steps: int = 10) -> Record:
    total = real + sum(synthetic.values())
    return Record(generation=0, metrics={"loss": 1.0}, seconds={},
                  composition=Composition(real=real, synthetic=synthetic, total=total, fresh_real=fresh),
                  compute=Compute(examples=examples, steps=steps, samples=100))


def test_tracks_extra_compute_and_synthetic_share_come_from_the_records():
    zero = _record(100, {})
    replace = [zero, _record(0, {"1": 100}), _record(0, {"2": 100})]
    history = [zero, _record(0, {"1": 100}), _record(0, {"1": 100, "2": 100})]  # accumulate-synthetic
    real_only = [zero, _record(100, {}), _record(100, {})]
    accumulate = [zero, _record(100, {"1": 100}), _record(100, {"1": 100, "2": 100})]
    fresh = [zero, _record(50, {"1": 50}, fresh=50), _record(50, {"2": 50}, fresh=100)]
    assert scorer.run_track(replace) == scorer.run_track(history) == scorer.CLOSED_LOOP
    assert scorer.run_track(real_only) == scorer.run_track(accumulate) == scorer.AUGMENTATION
    assert scorer.run_track(fresh) == scorer.FRESH_DATA
    assert scorer.track([replace, accumulate]) == scorer.AUGMENTATION  # the seed that used the most real data
    assert scorer.combine_tracks([scorer.FRESH_DATA, scorer.CLOSED_LOOP]) == scorer.FRESH_DATA
    assert scorer.synthetic_share(real_only) == 0.0 and scorer.synthetic_share(replace) == 1.0
    assert scorer.synthetic_share(accumulate) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # generations are weighted by the examples their fits processed
    heavy = [zero, _record(100, {"1": 100}, examples=100), _record(100, {"1": 100, "2": 100}, examples=300)]
    assert scorer.synthetic_share(heavy) == pytest.approx((100 * 1 / 2 + 300 * 2 / 3) / 400)
    assert not any(scorer.uses_extra_compute(r) for r in (replace, history, real_only, accumulate, fresh))
    assert scorer.uses_extra_compute(heavy)  # more examples than generation 0's fit
    assert scorer.uses_extra_compute([zero, _record(0, {"1": 100}, steps=11)])  # more optimiser steps
    large = _record(100, {}, examples=10**7)
    assert not scorer.uses_extra_compute([large, _record(0, {"1": 100}, examples=10**7 + 1)])  # within tolerance
    assert scorer.uses_extra_compute([large, _record(0, {"1": 100}, examples=10**7 + 100)])


def test_collapse_ratios_need_a_positive_generation_zero():
    assert scorer.collapse_ratios([2.0, 3.0, 5.0]) == [1.0, 1.5, 2.5]
    with pytest.raises(ValueError, match="positive generation-0 loss"):
        scorer.collapse_ratios([0.0, 1.0])
    with pytest.raises(ValueError):
        scorer.summarize([1.0, float("nan")])
