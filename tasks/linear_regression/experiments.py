"""The regression task's experiments, as commands that write a figure and its numbers.

    python -m collapselab.tasks.linear_regression.experiments scaling-law      --out DIR
    python -m collapselab.tasks.linear_regression.experiments strong-collapse  --out DIR
    python -m collapselab.tasks.linear_regression.experiments verifier-quality --out DIR
    python -m collapselab.tasks.linear_regression.experiments ridge-curves     --out DIR

Each runs the benchmark's own protocol through the public API (``RunSpec``/``execute``, strategies
from the registry or defined here as plugins) and writes ``DIR/<experiment>.png`` and
``DIR/<experiment>.json`` (every simulated point with its standard error, and the theory).
``--quick`` shrinks every size for a smoke test.

This module is a driver script, not part of the task plugin: the task never imports it.

- ``scaling-law`` (Dohmatob, Feng & Kempe 2024, arXiv 2402.07712, Sec. 5): power-law spectrum, noise-free
  real labels, synthetic labels with noise sigma0^2, downstream ridge with lambda = T^-l (l = 1, above
  the paper's l_crit): error of generation n against T = T0. Without synthetic data the error falls at
  the fast rate T^(-2 min(r,1) l) (bias only); every synthetic generation adds a variance term falling
  at the slow rate T^-(1 - l/beta), which wins beyond a crossover sample size that shrinks with n.
- ``strong-collapse`` (Dohmatob, Feng, Subramonian & Kempe 2024, arXiv 2410.04840): least squares on N rows
  of which a fixed fraction p comes from one generator (generation 0's model) and the rest are fresh
  real rows: the error stops falling at p^2 E||w_0 - w*||^2_Sigma.
- ``verifier-quality`` (Feng et al. 2024, arXiv 2406.07515; Yi, Liu, Cheng & Xu 2025, arXiv 2510.16657):
  the shipped ``verifier-filter[quality=q]`` (draw 2 T0 samples, keep up to T0 of those the task's
  verifier of quality q accepts: a threshold, not a top-k) on the regression task, 10 generations,
  against q: above a critical quality the verified chain ends below L_0, below it above; the theory is
  the contraction toward the verifier's weights ("knowledge centre") derived in the task card.
- ``ridge-curves`` (Dohmatob et al. 2024, Fig. 1): the downstream ridge model's error against lambda for
  n = 0, 1, 2, 5 generations (isotropic, fresh design): U-shaped curves whose minimum moves right with
  n, with ``adaptive-ridge``'s penalties marked.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.engine.rundir import Run
from collapselab.tasks.linear_regression import fresh_theory
from collapselab.tasks.linear_regression.setting import Setting

TASK = "linear_regression"
FILTER = "verifier-filter"  # the shipped strategy the verifier-quality experiment sweeps


# ---------------------------------------------------------------- strategies
# The papers fit all of their data: these strategies ask for their whole pool as the fit's examples
# (one pass), whatever the task's budget of examples per fit.
class DownstreamRidge(Strategy):
    """Replace; every generation's model is ridge with ``lam`` (``exponent`` > 0: lam = T0^-exponent), the
    generator chain stays least squares (the paper's downstream model)."""

    name = "downstream-ridge"
    citation = "Dohmatob, Feng & Kempe 2024, arXiv 2402.07712, Sec. 3"
    parameters = {"lam": 0.0, "exponent": 0.0}
    lam: float
    exponent: float

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        lam = self.lam if self.exponent <= 0 else ctx.budget.synthetic_size ** -self.exponent
        return {"ridge_lambda": float(lam), "regularise_generator": False, "examples": ctx.budget.synthetic_size}


class CleanRidge(DownstreamRidge):
    """DownstreamRidge on T0 fresh real rows instead of the latest samples: the paper's n = 0 (no synthetic
    generation behind the data), which the loop's generation 0 (always the task's default fit) cannot give."""

    name = "clean-ridge"
    uses_extra_real_data = True

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.fresh_real(ctx.budget.synthetic_size)


class FixedFraction(Strategy):
    """Generation 1 trains on ``size`` rows: a fraction ``synthetic_fraction`` sampled from generation 0's
    model, the rest fresh real rows (Dohmatob, Feng, Subramonian & Kempe 2024, Sec. 2)."""

    name = "fixed-fraction"
    citation = "Dohmatob, Feng, Subramonian & Kempe 2024, arXiv 2410.04840"
    parameters = {"size": 100, "synthetic_fraction": 0.1}
    size: int
    synthetic_fraction: float
    uses_extra_real_data = True

    def synthetic_count(self) -> int:
        return round(self.synthetic_fraction * self.size)

    def sample_size(self, ctx: StrategyContext) -> int:
        return max(1, self.synthetic_count())

    def training_pool(self, ctx: StrategyContext) -> Pool:
        real = ctx.fresh_real(self.size - self.synthetic_count())
        return Pool.concat([real, ctx.latest]) if self.synthetic_count() else real

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        return {"examples": self.size}


# --------------------------------------------------------------------- runs
@dataclass
class Runner:
    """Runs (task preset + overrides, strategy, seed, generations) into one root directory."""

    root: Path

    def run(self, strategy: Strategy, overrides: Mapping[str, Any], generations: int, seed: int = 0,
            preset: str = "cpu") -> Run:
        task = registry.make_task(TASK, preset, dict(overrides))
        spec = RunSpec(task, strategy, seed, generations, self.root, strategy_spec=strategy.name,
                       command=["experiments"])
        return execute(spec, progress=False)


def _curve(run: Run, metric: str = "loss") -> list[float]:
    return [float(r.metrics.get(metric, math.nan)) for r in run.records]


def _save(out: Path, name: str, figure: plt.Figure, data: Mapping[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for axis in figure.axes:
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    figure.savefig(out / f"{name}.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    return out / f"{name}.png"


def _setting(overrides: Mapping[str, Any]) -> Setting:
    return Setting.from_config({**registry.task_class(TASK).presets["cpu"], **overrides})


# ------------------------------------------------------------- scaling law
def _downstream_runs(runner: Runner, base: Mapping[str, Any], ns: Sequence[int], points: Sequence[Mapping[str, Any]],
                     params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[int, list[tuple[float, float]]]:
    """(loss, se) of generation n's downstream model at each point (config overrides, strategy parameters);
    n = 0 is the same fit on fresh real rows (CleanRidge), n >= 1 generation n of DownstreamRidge."""
    out: dict[int, list[tuple[float, float]]] = {n: [] for n in ns}
    for i, point in enumerate(points):
        chosen = params[i] if isinstance(params, Sequence) else params
        config = {**base, **point}
        runs = {0: runner.run(CleanRidge(**chosen), config, 1)} if 0 in ns else {}
        if max(ns) > 0:
            chain = runner.run(DownstreamRidge(**chosen), config, max(ns))
        for n in ns:
            record = runs[0].records[1] if n == 0 else chain.records[n]
            out[n].append((record.metrics["loss"], record.metrics["loss_se"]))
    return out


def _downstream_theory(setting: Setting, generations: Sequence[int], lam: float) -> dict[int, float]:
    """Theory of DownstreamRidge on the fresh design: generation n's ridge model after n least-squares generators."""
    out: dict[int, float] = {}
    generator: fresh_theory.Moments | None = fresh_theory.truth(setting)
    for n in range(max(generations) + 1):
        rows, noise = (setting.n_samples, setting.noise_var) if n == 0 else (setting.generator_samples,
                                                                             setting.generator_noise_var)
        if generator is None:
            break
        evaluated = fresh_theory.step(generator, setting, rows, noise, lam)
        if n in generations and evaluated is not None:
            out[n] = fresh_theory.excess_risk(evaluated, setting)
        generator = fresh_theory.step(generator, setting, rows, noise, 0.0)
    return out


def scaling_law(runner: Runner, out: Path, quick: bool) -> Path:
    beta, r, ell = 2.0, 0.5, 1.0
    dim, noise0, trials = (20, 1e-2, 8) if quick else (100, 2e-2, 16)
    ns = [0, 1, 4] if quick else [0, 1, 4, 16]
    sizes = [64, 128] if quick else [256, 512, 1024, 2048, 4096]
    base = {"dim": dim, "design": "fresh", "spectrum": "power", "spectrum_decay": beta, "source_r": r,
            "noise_var": 0.0, "generator_noise_var": noise0, "trials": trials}
    simulated = _downstream_runs(runner, base, ns, [{"n_samples": t} for t in sizes], {"exponent": ell})
    grid = np.unique(np.geomspace(2 * dim + 2, 60 * dim, 40).astype(int))
    theory: dict[int, list[float]] = {n: [] for n in ns}
    for t in grid:
        values = _downstream_theory(_setting({**base, "n_samples": int(t)}), ns, float(t) ** -ell)
        for n in ns:
            theory[n].append(values.get(n, math.nan))
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(ns)))
    for colour, n in zip(colours, ns):
        loss, se = (np.array(v) for v in zip(*simulated[n]))
        axis.errorbar(sizes, loss, yerr=se, fmt="o", color=colour, capsize=2, label=f"n = {n} (simulated)")
        axis.plot(grid, theory[n], "-", color=colour, lw=1.2, alpha=0.8)
    fast, slow = 2 * min(r, 1.0) * ell, 1 - ell / beta
    anchor_t, anchor = grid[0], theory[0][0]
    axis.plot(grid, anchor * (grid / anchor_t) ** -fast, "k--", lw=0.9, label=f"fast rate T^-{fast:g}")
    top = theory[ns[-1]][-1]
    axis.plot(grid, top * (grid / grid[-1]) ** -slow, "k:", lw=1.1, label=f"slow rate T^-{slow:g}")
    axis.set_xscale("log")
    axis.set_xticks(sizes, [str(t) for t in sizes])
    axis.set(yscale="log", xlabel="T = T0 (rows per generation)", ylabel="excess risk of generation n",
             title=f"Scaling law, power spectrum (beta={beta:g}, r={r:g}), ridge lambda = T^-{ell:g}\n"
                   f"d={dim}, noise-free real labels, sigma0^2={noise0:g}; lines: deterministic equivalent")
    axis.legend(fontsize=8)
    data = {"setting": base, "lambda_exponent": ell, "slopes": {"fast": -fast, "slow": -slow},
            "T": sizes, "simulated": {str(n): v for n, v in simulated.items()},
            "theory": {"T": grid.tolist(), **{str(n): [None if math.isnan(x) else x for x in v] for n, v in theory.items()}}}
    return _save(out, "scaling_law", figure, data)


# ---------------------------------------------------------- strong collapse
def strong_collapse(runner: Runner, out: Path, quick: bool) -> Path:
    dim, real_rows, trials = (8, 20, 16) if quick else (20, 40, 60)
    fractions = [0.0, 0.2] if quick else [0.0, 0.01, 0.05, 0.2, 0.5]
    sizes = [40, 200] if quick else [50, 150, 500, 1500, 5000, 15000]
    base = {"dim": dim, "n_samples": real_rows, "design": "fresh", "trials": trials}
    setting = _setting(base)
    expected_error = setting.noise_var * dim / (real_rows - dim - 1)  # E of generation 0: least squares on T rows
    simulated: dict[float, list[tuple[int, float, float, float | None]]] = {p: [] for p in fractions}
    generator_error = math.nan
    for p in fractions:
        for n in sizes:
            run = runner.run(FixedFraction(size=n, synthetic_fraction=p), base, 1)
            metrics = run.records[1].metrics
            simulated[p].append((n, metrics["loss"], metrics["loss_se"], metrics.get("theory_loss")))
            # the generators of this seed: generation 0's error, averaged over its trials (the same in every run)
            generator_error = run.records[0].metrics["loss"]
    grid = np.unique(np.geomspace(dim + 2, 1e7, 80).astype(int))
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    colours = plt.cm.plasma(np.linspace(0, 0.85, len(fractions)))
    theory = {}
    for colour, p in zip(colours, fractions):
        synthetic = np.round(p * grid).astype(int)
        curve = [fresh_theory.mixture_risk(generator_error, int(n - k), setting.noise_var, int(k),
                                           setting.generator_noise_var, dim) for n, k in zip(grid, synthetic)]
        theory[str(p)] = curve
        sizes_p, loss, se, _ = zip(*simulated[p])
        axis.errorbar(sizes_p, loss, yerr=se, fmt="o", color=colour, capsize=2, label=f"p = {p:g}")
        axis.plot(grid, [math.nan if c is None else c for c in curve], "-", color=colour, lw=1.1, alpha=0.8)
        if p:
            axis.axhline(p**2 * generator_error, color=colour, ls=":", lw=0.8)
    axis.set(xscale="log", yscale="log", xlabel="N (training rows: (1-p)N fresh real, pN from generation 0's model)",
             ylabel="excess risk", title=f"Strong model collapse: a fixed synthetic fraction p (d={dim}, least squares)\n"
                                         f"lines: exact theory given generation 0's error {generator_error:.3f} "
                                         f"(expected {expected_error:.3f}); dotted: floors p^2 x it")
    axis.legend(fontsize=8)
    data = {"setting": base, "generator_error": generator_error, "expected_generator_error": expected_error,
            "N": grid.tolist(), "theory": theory,
            "simulated": {str(p): v for p, v in simulated.items()}}
    return _save(out, "strong_collapse", figure, data)


# --------------------------------------------------------- verifier quality
def verified_chain_theory(l0: float, quality: float, generations: int, setting: Setting, oversample: float,
                          truth_energy: float) -> list[float]:
    """Mean-field theory of ``verifier-filter`` on replace (derived in the task card): E||w_g - w*||^2 for g = 0..G.

    The task's verifier accepts a draw when |r| <= c, r = y - x.w_v = x.(w - w_v) + noise and
    c = 2 sqrt(max(sigma^2, sigma0^2)); with s^2 = ||w - w_v||^2_Sigma the accepted residuals are a normal of
    variance s^2 + sigma0^2 truncated to [-a sqrt(s^2 + sigma0^2), a sqrt(s^2 + sigma0^2)], a = c / sqrt(s^2 +
    sigma0^2), and the filter keeps N = min(T0, oversample T0 P(|Z| <= a)) of them. Least squares on the kept rows
    moves w - w_v to rho (w - w_v), rho = v (s^2 + sigma0^2) / (v s^2 + sigma0^2) with v = 1 - 2 a phi(a) /
    (2 Phi(a) - 1) the variance of a standard normal truncated to [-a, a], plus the estimation noise of N rows."""
    noise, d, t0 = setting.generator_noise_var, setting.dim, setting.generator_samples
    band = 2.0 * math.sqrt(max(setting.noise_var, noise))
    gap = (1.0 - quality) ** 2 * truth_energy  # ||w_v - w*||^2_Sigma
    spread, cross = l0 + gap, -gap  # E||w - w_v||^2, E<w - w_v, w_v - w*>
    curve = [l0]
    for _ in range(generations):
        s2 = spread
        a = band / math.sqrt(s2 + noise)
        accepted = 2.0 * norm.cdf(a) - 1.0
        v = 1.0 - 2.0 * a * norm.pdf(a) / accepted
        kept = min(t0, oversample * t0 * accepted)
        rho = v * (s2 + noise) / (v * s2 + noise)
        beta = s2 / (s2 + noise)
        r2 = (s2 + noise) * v
        t2 = beta**2 * r2 + s2 * noise / (s2 + noise)
        residual = r2 - 2 * rho * beta * r2 + rho**2 * t2
        spread = rho**2 * spread + residual * d / (kept - d - 1)
        cross = rho * cross
        curve.append(spread + 2 * cross + gap)
    return curve


def verifier_quality(runner: Runner, out: Path, quick: bool) -> Path:
    generations = 3 if quick else 10
    overrides = {"trials": 200} if quick else {}
    qualities = [0.0, 1.0] if quick else [round(q, 2) for q in np.linspace(0.0, 1.0, 11)]
    setting = _setting(overrides)
    oversample = float(registry.strategy_class(FILTER).parameters["oversample"])
    replace = runner.run(registry.make_strategy("replace"), overrides, generations)
    l0 = replace.records[0].metrics["loss"]
    final, theory, curves = [], [], {}
    for q in qualities:
        run = runner.run(registry.make_strategy(f"{FILTER}[quality={q}]"), overrides, generations)
        curves[str(q)] = _curve(run)
        final.append((q, run.records[-1].metrics["loss"], run.records[-1].metrics["loss_se"]))
        theory.append(verified_chain_theory(l0, q, generations, setting, oversample, 1.0))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3))
    q, loss, se = (np.array(v) for v in zip(*final))
    left.errorbar(q, loss / l0, yerr=se / l0, fmt="o", color="C0", capsize=2, label="verifier-filter (simulated)")
    fine = np.linspace(0, 1, 101)
    left.plot(fine, [verified_chain_theory(l0, x, generations, setting, oversample, 1.0)[-1] / l0 for x in fine], "-",
              color="C0", lw=1, alpha=0.8, label="theory (contraction to the verifier)")
    left.axhline(replace.curve()[-1] / l0, color="C3", ls="--", lw=1, label="replace")
    left.axhline(1.0, color="k", lw=0.8, ls=":", label="L_0")
    critical = 1.0 - math.sqrt(l0)  # the verifier is exactly as good as generation 0's model
    left.axvline(critical, color="grey", lw=0.8)
    left.text(critical, 1.15, f" q_c = 1 - sqrt(L_0) = {critical:.2f}", fontsize=8)
    left.set(yscale="log", xlabel="verifier quality q", ylabel=f"L_{generations} / L_0",
             title=f"Verifier quality sweep (d={setting.dim}, T={setting.n_samples}, fixed design)")
    left.legend(fontsize=8)
    shown = [str(x) for x in qualities if x in (0.0, 0.4, 0.6, 0.8, 1.0)]
    for colour, key in zip(plt.cm.viridis(np.linspace(0, 0.9, len(shown))), shown):
        right.plot(np.array(curves[key]) / l0, "o-", color=colour, ms=3, label=f"q = {key}")
    right.plot(np.array(replace.curve()) / l0, "s--", color="C3", ms=3, label="replace")
    right.set(yscale="log", xlabel="generation", ylabel="L_g / L_0", title="Curves")
    right.legend(fontsize=8)
    data = {"setting": overrides, "L_0": l0, "critical_quality": critical, "replace": replace.curve(),
            "final": final, "theory_final": [t[-1] for t in theory], "curves": curves}
    return _save(out, "verifier_quality", figure, data)


# ------------------------------------------------------------- ridge curves
def ridge_curves(runner: Runner, out: Path, quick: bool) -> Path:
    dim, rows, trials = (10, 30, 40) if quick else (100, 200, 40)
    ns = [0, 1, 2] if quick else [0, 1, 2, 5]
    penalties = list(np.geomspace(0.03, 30, 4 if quick else 13))
    base = {"dim": dim, "n_samples": rows, "design": "fresh", "trials": trials}
    setting = _setting(base)
    simulated = _downstream_runs(runner, base, ns, [{}] * len(penalties), [{"lam": float(lam)} for lam in penalties])
    adaptive = runner.run(registry.make_strategy("adaptive-ridge"), base, max(ns))
    marks = {n: (adaptive.records[n].fit_options["ridge_lambda"], adaptive.records[n].metrics["loss"])
             for n in ns if n > 0}
    fine = np.geomspace(penalties[0], penalties[-1], 60)
    theory: dict[int, list[float]] = {n: [] for n in ns}
    for lam in fine:
        values = _downstream_theory(setting, ns, float(lam))
        for n in ns:
            theory[n].append(values[n])
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(ns)))
    for colour, n in zip(colours, ns):
        loss, se = (np.array(v) for v in zip(*simulated[n]))
        axis.errorbar(penalties, loss, yerr=se, fmt="o", color=colour, capsize=2, ms=4, label=f"n = {n}")
        axis.plot(fine, theory[n], "-", color=colour, lw=1.1, alpha=0.8)
        if n in marks:
            axis.plot(*marks[n], "*", color=colour, ms=13, mec="k", mew=0.6)
    axis.set(xscale="log", yscale="log", xlabel="ridge lambda of the downstream model (per-sample normalisation)",
             ylabel="excess risk of generation n",
             title=f"Downstream ridge after n generations (isotropic, d={dim}, T=T0={rows}, fresh design)\n"
                   "lines: deterministic equivalent; stars: adaptive-ridge (rule=paper)")
    axis.legend(fontsize=8)
    data = {"setting": base, "lambda": [float(x) for x in penalties], "simulated": {str(n): v for n, v in simulated.items()},
            "theory": {"lambda": fine.tolist(), **{str(n): v for n, v in theory.items()}},
            "adaptive_ridge": {str(n): list(v) for n, v in marks.items()}}
    return _save(out, "ridge_curves", figure, data)


EXPERIMENTS: dict[str, Callable[[Runner, Path, bool], Path]] = {
    "scaling-law": scaling_law,
    "strong-collapse": strong_collapse,
    "verifier-quality": verifier_quality,
    "ridge-curves": ridge_curves,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--out", type=Path, required=True, help="folder for the figure and its numbers")
    parser.add_argument("--runs", type=Path, default=None, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = EXPERIMENTS[args.experiment](Runner(args.runs or Path(scratch)), args.out, args.quick)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
