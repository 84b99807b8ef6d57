"""Adaptive ridge: replace, with a ridge penalty chosen for the number of synthetic generations behind the data.

``rule=paper`` is the adaptive regularisation of Dohmatob, Feng & Kempe 2024, "Model Collapse
Demystified: The Case of Regression" (NeurIPS 2024, arXiv 2402.07712), applied where the paper applies
it: only the downstream model is regularised; the generators that label the next generation stay
least-squares fits (``regularise_generator=false``). After n generations the labels carry, besides
their own noise sigma_d^2 on T_d rows, the generator's error, whose covariance is c_n Sigma^-1 with
c_n = sigma^2/(T-d-1) + (n-1) sigma0^2/(T0-d-1) (the paper's Theorem 4.1: it adds
n sigma0^2 d/(T0-d-1) to the clean error of least squares). Ridge shrinks that error like noise, so
the paper's test error of the downstream ridge model, in the large-sample form of its Theorem 4.1
(effective regularisation kappa = lambda), is

    E_n(lambda) = sum_k s_k (lambda^2 (w*_k)^2 + tau_n^2 s_k) / (s_k + lambda)^2,   tau_n^2 = sigma_d^2/T_d + c_n,

and the rule takes the minimiser lambda_n: the bottom of the U-shaped error-vs-lambda curves of the
paper's Figure 1, which moves to larger penalties as n grows. For Sigma = I and ||w*|| = 1 it is
lambda_n = d tau_n^2; for the power-law spectrum s_k = k^-beta with source condition r it scales as
T^-l with l = beta / (1 + 2 beta min(r, 1)), the paper's l_crit (Sec. 5, Fig. 1b), with a constant
that grows with n. The paper's Figure 1 as this task reproduces it (``python -m
collapselab.tasks.linear_regression.experiments ridge-curves``, tasks/linear_regression/figures/
ridge_curves.png): the simulated error of generation n's downstream model against lambda (40 trials,
isotropic, d = 100, T = T0 = 200, sigma = sigma0 = 1, fresh design; the deterministic equivalent
through the points) is U-shaped, rises with n and its bottom moves right:

    n   best lambda on the grid (error)   rule=paper lambda_n (error)
    0   0.53 (0.413)                      0.50 (d sigma^2 / (T ||w*||^2); the loop fits generation 0 by least squares)
    1   1.7  (0.663)                      1.51 (0.660)
    2   3.0  (0.768)                      2.52 (0.767)
    5   9.5  (0.894)                      5.55 (0.893; the curve is flat there)

Near least squares (lambda = 0.03) the errors are 0.86, 1.71, 2.55 and 5.19: the synthetic generations'
error is paid in full; the rule removes most of it.

``rule=posterior-mean`` is CollapseLab's own variant (no paper applies it): the penalty is applied
inside the chain (``regularise_generator=true``), so its shrinkage compounds across generations, and it
is tuned for that. With Sigma = I, X^T X / T ~ I and ridge scales the fit by s = 1/(1 + lambda); track
per coordinate the model's signal gain a and noise variance v (w = a w* + noise): generation 0 is least
squares (a = 1, v = u_0, u = sigma_d^2 / (T_d - d - 1)); a replace step gives the least-squares
estimate a w* + noise of variance v + u, which the penalty scales by s. Under the prior
w* ~ N(0, I/d) (||w*|| = 1), the s minimising E(w - w*)^2 is s = a (1/d) / (a^2/d + v + u), then
a <- s a, v <- s^2 (v + u) and lambda = 1/s - 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts.task import TaskDescription
from collapselab.errors import ParameterError, PluginError

RULES = ("paper", "posterior-mean")
REQUIRED_CONFIG = ("dim", "n_samples", "noise_var", "generator_samples", "generator_noise_var", "spectrum",
                   "spectrum_decay", "source_r")


def _sizes(config: Any) -> tuple[int, int, float, int, float]:
    """d, T, sigma^2, T0, sigma0^2 of a resolved config (:attr:`TaskDescription.resolved_config`)."""
    return (int(config["dim"]), int(config["n_samples"]), float(config["noise_var"]),
            int(config["generator_samples"]), float(config["generator_noise_var"]))


def _spectrum(config: Any) -> tuple[np.ndarray, np.ndarray]:
    """(s_k, E (w*_k)^2): the task's isotropic (||w*|| = 1) or power-law setting."""
    d = int(config["dim"])
    if config["spectrum"] == "isotropic":
        return np.ones(d), np.full(d, 1.0 / d)
    beta, r = float(config["spectrum_decay"]), float(config["source_r"])
    k = np.arange(1, d + 1, dtype=np.float64)
    return k**-beta, k ** -(1.0 + 2.0 * beta * r - beta)


def paper_penalty(generation: int, config: Any) -> float:
    """lambda_n of ``rule=paper`` for the downstream model of generation ``generation`` (n = generation),
    from the task's resolved config."""
    d, t, noise, t0, noise0 = _sizes(config)
    samples, label_noise = (t, noise) if generation == 0 else (t0, noise0)
    drift = 0.0 if generation == 0 else noise / (t - d - 1) + (generation - 1) * noise0 / (t0 - d - 1)
    tau2 = label_noise / samples + drift
    s, w2 = _spectrum(config)
    if config["spectrum"] == "isotropic":
        return d * tau2 / float(w2.sum())

    def error(log_lam: float) -> float:
        lam = math.exp(log_lam)
        return float(np.sum(s * (lam**2 * w2 + tau2 * s) / (s + lam) ** 2))

    found = minimize_scalar(error, bounds=(math.log(1e-12), math.log(1e6)), method="bounded",
                            options={"xatol": 1e-10})
    return math.exp(found.x)


def posterior_mean_penalties(generations: int, config: Any) -> list[float]:
    """lambda_1..lambda_generations of ``rule=posterior-mean`` (generation 0 is least squares)."""
    d, t, noise, t0, noise0 = _sizes(config)
    prior = 1.0 / d
    gain, variance = 1.0, noise / (t - d - 1)
    unit = noise0 / (t0 - d - 1)
    penalties = []
    for _ in range(generations):
        shrink = gain * prior / (gain**2 * prior + variance + unit)
        penalties.append(1.0 / shrink - 1.0)
        gain, variance = shrink * gain, shrink**2 * (variance + unit)
    return penalties


class AdaptiveRidge(Strategy):
    name = "adaptive-ridge"
    citation = "Dohmatob, Feng & Kempe 2024, arXiv 2402.07712 (rule=paper); rule=posterior-mean is CollapseLab's own"
    parameters = {"rule": "paper"}
    rule: str

    def check_parameters(self) -> None:
        if self.rule not in RULES:
            raise ParameterError(f"rule must be one of {list(RULES)}, got {self.rule!r}")

    def check_task(self, task: TaskDescription) -> None:
        config = task.resolved_config
        missing = [k for k in REQUIRED_CONFIG if k not in config]
        if missing or not {"ridge_lambda", "regularise_generator"} <= set(task.fit_options):
            raise PluginError(
                f"strategy {self.name!r} needs a task with the fit options 'ridge_lambda' and 'regularise_generator' "
                f"and the config keys {', '.join(REQUIRED_CONFIG)}; task {task.name!r} does not have them"
            )
        d, t, _, t0, _ = _sizes(config)
        if min(t, t0) <= d + 1:
            raise PluginError(f"strategy {self.name!r} needs n_samples and generator_samples > dim + 1 "
                              f"(least-squares generators, as in the paper's Theorem 4.1)")
        if self.rule == "posterior-mean" and config["spectrum"] != "isotropic":
            raise PluginError(f"strategy {self.name!r}: rule=posterior-mean assumes spectrum=isotropic")

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        config = ctx.task.resolved_config
        if self.rule == "paper":
            return {"ridge_lambda": paper_penalty(ctx.generation, config), "regularise_generator": False}
        return {"ridge_lambda": posterior_mean_penalties(ctx.generation, config)[-1], "regularise_generator": True}
