"""Adaptive ridge: replace, with a ridge penalty re-tuned for how often labels were recycled.

Dohmatob, Feng & Kempe 2024, "Model Collapse Demystified: The Case of Regression"
(NeurIPS 2024, arXiv 2402.07712) show that the test error under recursive relabelling grows
linearly in the number of generations and that the ridge penalty must grow with them to
counter it (their adaptive regularisation).

Schedule implemented. Under replace with a fixed design, the OLS fit of generation g sees
w* through g+1 independent label-noise draws: w_OLS ~ N(w*, (g+1) sigma^2 (X^T X)^{-1}),
exactly as one fit with noise variance (g+1) sigma^2. For a prior w* ~ N(0, (E/d) I) with
signal energy E = ||w*||^2, the Bayes-optimal (posterior-mean) ridge penalty for that noise
level is lambda_g = (g+1) sigma^2 d / E. So the penalty grows linearly with the generation,
as the error it counters does. Generation 0 (the real-data fit) stays plain OLS, like every
strategy's. It needs a task with the fit option ``ridge_lambda`` and config keys
``noise_var`` and ``dim``; the regression task draws ||w*|| = 1, hence ``signal_energy=1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark import Pool, Strategy, StrategyContext
from benchmark.errors import PluginError
from benchmark.params import ParameterError


class AdaptiveRidge(Strategy):
    name = "adaptive-ridge"
    citation = "Dohmatob, Feng & Kempe 2024, arXiv 2402.07712"
    parameters = {"signal_energy": 1.0}

    def check_parameters(self) -> None:
        if self.signal_energy <= 0:
            raise ParameterError(f"signal_energy must be positive, got {self.signal_energy}")

    def check_task(self, task: Mapping[str, Any]) -> None:
        missing = [k for k in ("noise_var", "dim") if k not in task["config"]]
        if "ridge_lambda" not in task["fit_options"] or missing:
            raise PluginError(
                f"strategy {self.name!r} needs a task with the fit option 'ridge_lambda' and config keys "
                f"'noise_var' and 'dim'; task {task['name']!r} does not have them"
            )

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        config = ctx.task["config"]
        penalty = (ctx.generation + 1) * config["noise_var"] * config["dim"] / self.signal_energy
        return {"ridge_lambda": float(penalty)}
