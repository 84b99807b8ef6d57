"""The scorer: summaries over seeds, collapse ratios, normalised scores."""

from __future__ import annotations

import numpy as np
import pytest

from collapselab.scoring import scorer


def test_summarize_mean_std_and_ci():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    summary = scorer.summarize(values)
    assert summary.mean == 3.0
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert summary.ci_low < 3.0 < summary.ci_high
    assert summary.ci_low >= 1.0 and summary.ci_high <= 5.0
    assert scorer.summarize(values) == summary  # the bootstrap is seeded


def test_summarize_single_and_constant_values():
    assert scorer.summarize([2.5]) == scorer.Summary(2.5, None, None, None, 1)
    assert scorer.summarize([1.0, 1.0]).ci_low == 1.0
    with pytest.raises(ValueError):
        scorer.summarize([1.0, float("nan")])


def test_collapse_ratios_and_normalised_score():
    assert scorer.collapse_ratios([2.0, 3.0, 5.0]) == [1.0, 1.5, 2.5]
    assert scorer.normalised_score(final_replace=5.0, final_strategy=5.0, initial=1.0) == 0.0
    assert scorer.normalised_score(final_replace=5.0, final_strategy=1.0, initial=1.0) == 1.0
    assert scorer.normalised_score(final_replace=5.0, final_strategy=0.5, initial=1.0) == pytest.approx(1.125)
    assert scorer.normalised_score(final_replace=1.0, final_strategy=0.5, initial=1.0) is None


def test_paired_scores_use_common_seeds():
    replace = {0: [1.0, 3.0], 1: [1.0, 5.0], 2: [1.0, 2.0]}
    ours = {0: [1.0, 2.0], 1: [1.0, 1.0], 7: [1.0, 1.0]}
    assert scorer.paired_scores(ours, replace, 1) == [0.5, 1.0]
