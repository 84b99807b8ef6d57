"""The scorer: scores over the whole curve, intervals that cover at their nominal rate at 3 seeds,
the significance gate, bounded contributions and the tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

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


def _coverage(draw, truth, reps=3000):
    hits = 0
    for _ in range(reps):
        low, high = draw()
        hits += low is not None and low <= truth <= high
    return hits / reps


def test_fieller_interval_covers_the_true_score_at_its_nominal_rate_with_three_seeds():
    """A known answer: per-seed areas A, B bivariate normal with mean ratio 0.3, correlated as
    strategies sharing generation 0 are; the 95% interval must cover S = 0.7 about 95% of the time."""
    rng = np.random.default_rng(0)
    mu_a, mu_b, sd_a, sd_b, rho = 1.5, 5.0, 0.6, 0.5, 0.6
    cov = [[sd_a**2, rho * sd_a * sd_b], [rho * sd_a * sd_b, sd_b**2]]

    def draw():
        ab = rng.multivariate_normal([mu_a, mu_b], cov, size=3)
        replace = {s: [1.0, 1.0 + ab[s, 1]] for s in range(3)}
        ours = {s: [1.0, 1.0 + ab[s, 0]] for s in range(3)}
        score = scorer.paired_score(ours, replace)
        return score.ci_low, score.ci_high

    assert 0.93 <= _coverage(draw, 1 - mu_a / mu_b) <= 0.97


def test_t_interval_of_a_mean_covers_at_its_nominal_rate_with_three_seeds():
    rng = np.random.default_rng(1)

    def draw():
        s = scorer.summarize(rng.normal(2.0, 0.3, size=3))
        return s.ci_low, s.ci_high

    assert 0.93 <= _coverage(draw, 2.0) <= 0.97


def test_pooled_monte_carlo_interval_covers_and_is_narrower():
    """Seeds whose value is a mean over independent trials (the regression task): pooling the
    trials' standard errors gives a valid and far narrower interval than the 3-seed t interval."""
    rng = np.random.default_rng(2)
    trials = 200
    widths = []

    def draw():
        data = rng.exponential(0.5, size=(3, trials))
        means, se = data.mean(axis=1), data.std(axis=1, ddof=1) / math.sqrt(trials)
        pooled, plain = scorer.summarize(means, se, trials), scorer.summarize(means)
        widths.append((pooled.ci_high - pooled.ci_low) / (plain.ci_high - plain.ci_low))
        return pooled.ci_low, pooled.ci_high

    assert 0.93 <= _coverage(draw, 0.5, reps=2000) <= 0.97
    assert np.median(widths) < 0.6  # same standard error, but on ~600 rather than 2 degrees of freedom


def test_uncertain_denominator_gives_no_interval_and_fails_the_significance_gate():
    noisy = {0: [1.0, 1.1], 1: [1.0, 0.9], 2: [1.0, 1.05]}
    assert not scorer.degradation(noisy).significant
    score = scorer.paired_score({0: [1.0, 1.0], 1: [1.0, 1.0], 2: [1.0, 1.0]}, noisy)
    assert score.ci_low is None and score.ci_high is None
    clear = {0: [1.0, 3.0], 1: [1.0, 3.2], 2: [1.0, 2.9]}
    assert scorer.degradation(clear).significant


def test_overall_clips_each_task_and_combines_standard_errors():
    good = scorer.Score(0.8, 0.7, 0.9, 0.05, 3)
    terrible = scorer.Score(-4.0, -6.0, -2.0, 1.0, 3)
    combined = scorer.overall({"a": good, "b": terrible})
    assert combined.mean == pytest.approx((0.8 - 1.0) / 2)  # -4 counts as -1
    assert combined.ci_low < combined.mean < combined.ci_high
    assert scorer.overall({}) is None


def test_tracks_follow_compute_and_real_data():
    assert scorer.track(False, [0, 100, 100], 100) == scorer.STANDARD
    assert scorer.track(False, [100, 100, 101], 100) == scorer.EXTRA_COMPUTE
    assert scorer.track(True, [100, 100], 100) == scorer.EXTRA_REAL_DATA
    assert scorer.track(False, [0, 0], None) == scorer.STANDARD  # closed-form fits have no budget


def test_collapse_ratios_need_a_positive_generation_zero():
    assert scorer.collapse_ratios([2.0, 3.0, 5.0]) == [1.0, 1.5, 2.5]
    with pytest.raises(ValueError, match="positive generation-0 loss"):
        scorer.collapse_ratios([0.0, 1.0])
    with pytest.raises(ValueError):
        scorer.summarize([1.0, float("nan")])
