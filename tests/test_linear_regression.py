"""The regression task: simulation against closed-form theory, and every baseline on it."""

from __future__ import annotations

import numpy as np
import pytest

from collapselab.tasks.linear_regression import theory
from tests.helpers import run_strategy


@pytest.mark.parametrize("dim,n_samples", [(5, 20), (10, 50)])
@pytest.mark.parametrize("strategy", ["replace", "accumulate"])
def test_simulation_matches_theory(tmp_path, strategy, dim, n_samples):
    """Fixed design, OLS: replace n s^2 d/(T-d-1), accumulate s^2 d/(T-d-1) sum 1/i^2."""
    overrides = {"dim": dim, "n_samples": n_samples, "trials": 4000, "noise_var": 1.0}
    run = run_strategy(tmp_path, "linear_regression", strategy, generations=5, overrides=overrides)
    closed_form = theory.replace_risk if strategy == "replace" else theory.accumulate_risk
    for record in run.records:
        fits = record["generation"] + 1
        expected = closed_form(fits, dim, n_samples, 1.0)
        metrics = record["metrics"]
        assert metrics["theory_loss"] == pytest.approx(expected, rel=1e-12)
        z = (metrics["loss"] - expected) / metrics["loss_se"]
        assert abs(z) < 4.5, f"generation {fits - 1}: simulated {metrics['loss']:.4f} vs theory {expected:.4f}"


def test_fresh_design_replace_matches_theory_and_accumulate_has_none(tmp_path):
    overrides = {"dim": 5, "n_samples": 20, "trials": 4000, "design": "fresh"}
    replace = run_strategy(tmp_path, "linear_regression", "replace", generations=4, overrides=overrides)
    for record in replace.records:
        expected = theory.replace_risk(record["generation"] + 1, 5, 20, 1.0)
        assert abs(record["metrics"]["loss"] - expected) < 4.5 * record["metrics"]["loss_se"]
    accumulate = run_strategy(tmp_path, "linear_regression", "accumulate", generations=2, overrides=overrides)
    assert "theory_loss" in accumulate.records[0]["metrics"]
    assert all("theory_loss" not in r["metrics"] for r in accumulate.records[1:])


def test_replace_collapses_and_accumulate_stays_bounded(tmp_path):
    replace = run_strategy(tmp_path, "linear_regression", "replace", generations=6)
    accumulate = run_strategy(tmp_path, "linear_regression", "accumulate", generations=6)
    assert replace.curve()[0] == accumulate.curve()[0]  # generation 0 is shared
    assert replace.curve()[-1] / replace.curve()[0] > 5
    assert accumulate.curve()[-1] / accumulate.curve()[0] < 1 + np.pi**2 / 6


def composition(run, generation):
    return run.records[generation]["composition"]


def test_baselines_build_the_pools_they_promise(tmp_path):
    t, g = 20, 3  # smoke preset: n_samples = 20
    runs = {
        s: run_strategy(tmp_path, "linear_regression", s, generations=g)
        for s in ["replace", "accumulate", "accumulate-subsample", "mix[real_fraction=0.25]", "fresh-real",
                  "verifier-filter", "verifier-filter[accumulate=true]", "adaptive-ridge"]
    }
    assert composition(runs["replace"], g) == {"real": 0, "synthetic": {"3": t}, "total": t, "fresh_real": 0,
                                              "weighted": False}
    assert composition(runs["accumulate"], g)["synthetic"] == {"1": t, "2": t, "3": t}
    assert composition(runs["accumulate"], g)["real"] == t
    assert composition(runs["accumulate-subsample"], g)["total"] == t
    mix = composition(runs["mix[real_fraction=0.25]"], g)
    assert (mix["real"], mix["synthetic"]) == (5, {"3": 15})
    fresh = runs["fresh-real"]
    assert [composition(fresh, k)["fresh_real"] for k in range(g + 1)] == [0, 10, 20, 30]
    assert fresh.manifest["strategy"]["uses_extra_real_data"] is True
    verifier = runs["verifier-filter"]
    assert verifier.records[g]["compute"]["samples"] == 2 * t
    assert composition(verifier, g)["synthetic"] == {"3": t}
    assert composition(runs["verifier-filter[accumulate=true]"], g)["synthetic"] == {"1": t, "2": t, "3": t}
    ridge = [r["fit_options"]["ridge_lambda"] for r in runs["adaptive-ridge"].records]
    assert ridge[0] == 0.0 and all(b > 0 for b in ridge[1:])
    assert "theory_loss" not in runs["adaptive-ridge"].records[1]["metrics"]


def test_verifier_and_adaptive_ridge_beat_replace(tmp_path):
    overrides = {"trials": 2000}
    final = {
        s: run_strategy(tmp_path, "linear_regression", s, generations=5, overrides=overrides).curve()[-1]
        for s in ["replace", "adaptive-ridge", "verifier-filter"]
    }
    assert final["adaptive-ridge"] < final["replace"]
    assert final["verifier-filter"] < final["replace"]


def test_verifier_acceptance_falls_with_its_quality():
    from collapselab.contracts import registry

    task = registry.make_task("linear_regression", "smoke")
    real = task.real_pool()
    accepted = [float((task.verify(real, q, np.random.default_rng(0)) >= 0).mean()) for q in (1.0, 0.5, 0.0)]
    assert abs(accepted[0] - 0.954) < 0.02  # a perfect verifier accepts |noise| <= 2 sigma
    assert accepted[0] > accepted[1] > accepted[2]
