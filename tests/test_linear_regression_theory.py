"""The regression task's theory against simulation, setting by setting, and against the papers' closed forms.

Simulations compare ``loss`` with the recorded ``theory_loss`` within 3 Monte-Carlo standard errors at every
generation. The fixed-design theory is exact given the design; the fresh-design theory is exact for least
squares and isotropic minimum norm and a deterministic equivalent for ridge and power-law minimum norm (those
settings use d >= 100, where the equivalents are within a fraction of the standard error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.formats.records import as_json
from collapselab.tasks.linear_regression import fresh_theory, theory
from collapselab.tasks.linear_regression.data import FixedDesignData
from collapselab.tasks.linear_regression.experiments import CleanRidge, DownstreamRidge, FixedFraction
from collapselab.tasks.linear_regression.fixed_theory import FixedDesign, Source
from collapselab.tasks.linear_regression.setting import Setting

TASK = "linear_regression"


class RidgeChain(Strategy):
    """Replace or accumulate with a ridge penalty inside the chain (every model labels the next generation)."""

    name = "ridge-chain"
    parameters = {"lam": 0.1, "accumulate": False}
    lam: float
    accumulate: bool

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.accumulated() if self.accumulate else ctx.latest

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        # all of the pool (whole passes): the chain's theory is that of the pool's own fit
        return {"ridge_lambda": self.lam, "regularise_generator": True, "examples": len(self.training_pool(ctx))}


class Corrected(Strategy):
    """Replace on self-corrected samples."""

    name = "corrected"
    requires_hooks = ("correct",)

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        return ctx.correct(samples, 0.5)

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest


def simulate(root: Path, strategy: Strategy | str, overrides: dict[str, Any], generations: int, seed: int = 0):
    task = registry.make_task(TASK, "smoke", overrides)
    chosen = registry.make_strategy(strategy) if isinstance(strategy, str) else strategy
    spec = RunSpec(task, chosen, seed, generations, root, command=["pytest"])
    return execute(spec, progress=False)


def assert_matches_theory(run, within: float = 3.0) -> list[float]:
    theories = []
    for record in run.records:
        metrics = record.metrics
        assert "theory_loss" in metrics, f"generation {record.generation} has no theory"
        z = (metrics["loss"] - metrics["theory_loss"]) / metrics["loss_se"]
        assert abs(z) < within, f"generation {record.generation}: {metrics['loss']:.5g} vs theory " \
                                f"{metrics['theory_loss']:.5g} ({z:+.1f} standard errors)"
        theories.append(metrics["theory_loss"])
    return theories


# ------------------------------------------------------------------ fixed design (exact given the design)
FIXED = [
    ("replace", {"trials": 4000}),
    ("accumulate[compute=growing]", {"trials": 4000}),
    ("replace", {"dim": 20, "n_samples": 12, "trials": 2000}),  # minimum norm, T < d
    ("accumulate[compute=growing]", {"dim": 20, "n_samples": 12, "trials": 2000, "spectrum": "power"}),
    ("real-only", {"trials": 2000}),
    ("replace", {"dim": 10, "n_samples": 30, "trials": 2000, "spectrum": "power", "generator_noise_var": 0.3}),
    (RidgeChain(lam=0.2), {"dim": 10, "n_samples": 30, "trials": 2000, "spectrum": "power"}),
    (RidgeChain(lam=0.5, accumulate=True), {"dim": 10, "n_samples": 30, "trials": 2000}),
    (DownstreamRidge(lam=0.3), {"dim": 10, "n_samples": 8, "trials": 2000}),
    ("adaptive-ridge", {"dim": 10, "n_samples": 40, "trials": 2000, "spectrum": "power"}),
]


@pytest.mark.parametrize("strategy,overrides", FIXED, ids=lambda v: str(v) if isinstance(v, dict) else getattr(v, "name", v))
def test_fixed_design_simulation_matches_its_exact_theory(tmp_path, strategy, overrides):
    assert_matches_theory(simulate(tmp_path, strategy, overrides, 3))


def _designs(setting: Setting, count: int) -> list[FixedDesign]:
    designs = []
    for seed in range(count):
        s, v = FixedDesignData(setting, seed).gram_eigen
        designs.append(FixedDesign(setting, s, v, setting.power_signal if setting.spectrum == "power" else None))
    return designs


def _chain_risks(setting: Setting, fits: int, designs: int) -> tuple[list[float], list[float]]:
    """Per design: the exact risk of replace and of accumulate after ``fits`` least-squares fits."""
    noise, noise0 = setting.noise_var, setting.generator_noise_var
    variances = {-1: noise, **{o: noise0 for o in range(1, fits)}}
    replace, accumulate = [], []
    for design in _designs(setting, designs):
        chain = kept = [design.fit([Source(-1, design.truth(), noise, 1.0)], 0.0)]
        kept = list(chain)
        for o in range(1, fits):
            chain.append(design.fit([Source(o, chain[-1], noise0, 1.0)], 0.0))
            sources = [Source(-1, design.truth(), noise, 1 / (o + 1))]
            sources += [Source(h, kept[h - 1], noise0, 1 / (o + 1)) for h in range(1, o + 1)]
            kept.append(design.fit(sources, 0.0))
        replace.append(design.excess_risk(chain[-1], variances))
        accumulate.append(design.excess_risk(kept[-1], variances))
    return replace, accumulate


def _close(values: list[float], expected: float) -> bool:
    return abs(np.mean(values) - expected) < 3 * np.std(values, ddof=1) / np.sqrt(len(values))


@pytest.mark.parametrize("spectrum", ["isotropic", "power"])
def test_fixed_design_theory_averages_to_the_papers_closed_forms(spectrum):
    """Over designs, whatever Sigma: replace sigma^2 d/(T-d-1) + n sigma0^2 d/(T-d-1) (Dohmatob et al. Thm 4.1,
    Gerstgrasser et al. Sec. 2) and accumulate sigma^2 d/(T-d-1) sum 1/i^2 (Gerstgrasser et al. Sec. 2)."""
    d, t, fits = 5, 20, 4
    preset = {**registry.task_class(TASK).presets["smoke"], "spectrum": spectrum}
    replace, _ = _chain_risks(Setting.from_config({**preset, "generator_noise_var": 0.4}), fits, 3000)
    assert _close(replace, theory.unit_risk(d, t, 1.0) + (fits - 1) * theory.unit_risk(d, t, 0.4))
    _, accumulate = _chain_risks(Setting.from_config(preset), fits, 3000)
    assert _close(accumulate, theory.accumulate_risk(fits, d, t, 1.0))


# ------------------------------------------------------------------ fresh design
def test_fresh_least_squares_is_the_papers_formula_with_its_own_generator_noise_and_size(tmp_path):
    """Dohmatob et al. 2024, Theorem 4.1: sigma^2 d/(T-d-1) + n sigma0^2 d/(T0-d-1), here with T0 != T."""
    # a budget of 60 examples is whole passes over both the real pool (3 x 20) and each sample (2 x 30)
    overrides = {"design": "fresh", "generator_samples": 30, "generator_noise_var": 0.5, "trials": 4000, "examples": 60}
    run = simulate(tmp_path, "replace", overrides, 3)
    theories = assert_matches_theory(run)
    expected = [theory.unit_risk(5, 20, 1.0) + n * theory.unit_risk(5, 30, 0.5) for n in range(4)]
    assert theories == pytest.approx(expected, rel=1e-12)


def test_fresh_least_squares_with_a_power_spectrum(tmp_path):
    assert_matches_theory(simulate(tmp_path, "replace", {"design": "fresh", "spectrum": "power", "trials": 3000}, 2))


@pytest.mark.parametrize("noise", [1.0, 0.0])
def test_fresh_minimum_norm_below_the_dimension_isotropic(tmp_path, noise):
    """Exact for Sigma = I; noise-free it still loses signal every generation (1 - (T/d)^(n+1) for the bias)."""
    run = simulate(tmp_path, "replace", {"design": "fresh", "dim": 12, "n_samples": 5, "trials": 20000,
                                         "noise_var": noise}, 2)
    theories = assert_matches_theory(run)
    if noise == 0.0:
        assert theories == pytest.approx([1 - (5 / 12) ** (n + 1) for n in range(3)], rel=1e-12)


def test_fresh_ridge_deterministic_equivalent_isotropic(tmp_path):
    overrides = {"design": "fresh", "dim": 100, "n_samples": 150, "trials": 100}
    assert_matches_theory(simulate(tmp_path, RidgeChain(lam=0.3), overrides, 2))


def test_fresh_downstream_ridge_deterministic_equivalent_power(tmp_path):
    overrides = {"design": "fresh", "dim": 100, "n_samples": 150, "trials": 100, "spectrum": "power",
                 "spectrum_decay": 1.5}
    assert_matches_theory(simulate(tmp_path, DownstreamRidge(lam=0.01), overrides, 2))


@pytest.mark.slow
def test_fresh_minimum_norm_deterministic_equivalent_power(tmp_path):
    overrides = {"design": "fresh", "dim": 200, "n_samples": 100, "trials": 100, "spectrum": "power",
                 "spectrum_decay": 1.0}
    assert_matches_theory(simulate(tmp_path, "replace", overrides, 1))


@pytest.mark.slow
def test_fresh_ridge_on_real_rows_deterministic_equivalent(tmp_path):
    overrides = {"design": "fresh", "dim": 200, "n_samples": 300, "trials": 100, "spectrum": "power",
                 "spectrum_decay": 1.5}
    assert_matches_theory(simulate(tmp_path, CleanRidge(lam=0.003), overrides, 1))


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.6])
def test_strong_collapse_mixture_is_exact(tmp_path, fraction):
    """Least squares on (1-p)N fresh real rows and pN rows of generation 0's model (Dohmatob et al. 2024b)."""
    run = simulate(tmp_path, FixedFraction(size=60, synthetic_fraction=fraction), {"design": "fresh", "trials": 4000}, 1)
    assert_matches_theory(run)


def test_strong_collapse_floor_is_p_squared_times_the_generator_error():
    delta, p, d = 0.8, 0.1, 20
    for n in (10**6, 10**8):
        risk = fresh_theory.mixture_risk(delta, int(n * (1 - p)), 1.0, int(n * p), 1.0, d)
        assert risk == pytest.approx(p**2 * delta + d / n, rel=1e-3)


# ------------------------------------------------------------------ when there is no theory
def test_a_fit_that_draws_part_of_its_pool_gets_no_theory(tmp_path):
    """Accumulate at the standard budget fits n_samples examples drawn from a pool twice (then three
    times) that size: the draw, not the pool, is fitted, and the pool's theory does not apply."""
    run = simulate(tmp_path, "accumulate", {}, 2)
    assert [r.compute.examples for r in run.records] == [20, 20, 20]
    assert [r.composition.total for r in run.records] == [20, 40, 60]
    assert "theory_loss" in run.records[0].metrics
    assert all("theory_loss" not in r.metrics for r in run.records[1:])
    # whole passes over a pool: the pool's own fit, whose theory holds (here 2 passes of the real pool)
    task = registry.make_task(TASK, "smoke")
    first = as_json(run.records[0])  # the task's theory reads records as their files hold them
    first["compute"]["examples"] = 40
    assert task.for_seed(0).theory([first])["theory_loss"] == run.records[0].metrics["theory_loss"]


def test_curated_corrected_and_accumulated_fresh_pools_get_no_theory(tmp_path):
    fresh = simulate(tmp_path / "a", "accumulate[compute=growing]", {"design": "fresh"}, 2)
    assert "theory_loss" in fresh.records[0].metrics
    assert all("theory_loss" not in r.metrics for r in fresh.records[1:])
    verifier = simulate(tmp_path / "b", "verifier-filter", {}, 2)
    assert all("theory_loss" not in r.metrics for r in verifier.records[1:])
    corrected = simulate(tmp_path / "c", Corrected(), {}, 2)
    assert all("theory_loss" not in r.metrics for r in corrected.records[1:])
    subsample = simulate(tmp_path / "d", "accumulate-subsample", {}, 2)
    assert all("theory_loss" not in r.metrics for r in subsample.records[1:])


def test_infinite_least_squares_risk_has_no_theory(tmp_path):
    run = simulate(tmp_path, "replace", {"design": "fresh", "dim": 10, "n_samples": 10, "trials": 20}, 1)
    assert all("theory_loss" not in r.metrics for r in run.records)
