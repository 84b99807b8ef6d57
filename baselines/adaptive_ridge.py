"""Adaptive ridge: replace, with a ridge penalty re-tuned every generation for the noise the
recycled labels have accumulated.

Dohmatob, Feng & Kempe 2024, "Model Collapse Demystified: The Case of Regression"
(NeurIPS 2024, arXiv 2402.07712) show that the test error under recursive relabelling grows
linearly with the number of generations and that the ridge penalty must be adapted to the
generation to counter it (their adaptive regularisation; there, only the final model is
regularised). In this loop every generation's model is both evaluated and relabels the next
generation's data, so the penalty must account for the shrinkage it passes on.

Schedule implemented (a per-generation posterior-mean rule). With an isotropic design,
X^T X ~ T I, so ridge scales the fit by s = T / (T + lambda). Track, per coordinate, the
model's signal gain a_g and noise variance v_g with w_g = a_g w* + noise:
generation 0 is plain OLS (a_0 = 1, v_0 = u with u = sigma^2 / (T - d - 1)); a replace step
fits labels of w_{g-1} plus fresh noise, giving the OLS estimate a_{g-1} w* + noise of
variance v_{g-1} + u, which the penalty then scales by s_g. Under the prior w* ~ N(0, tau^2 I)
with tau^2 = ||w*||^2 / d, the s_g minimising E(w_g - w*)^2 is

    s_g = a_{g-1} tau^2 / (a_{g-1}^2 tau^2 + v_{g-1} + u),   lambda_g = T (1/s_g - 1),

then a_g = s_g a_{g-1} and v_g = s_g^2 (v_{g-1} + u). The penalty thus rises with the
generation as the signal-to-noise ratio of the recycled labels falls. It needs a task with
the fit option ``ridge_lambda`` and config keys ``noise_var``, ``dim`` and ``n_samples``; the
regression task draws ||w*|| = 1, hence ``signal_energy=1``.
"""

from __future__ import annotations

from typing import Any

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts.task import TaskDescription
from collapselab.errors import ParameterError, PluginError

REQUIRED_CONFIG = ("noise_var", "dim", "n_samples")


def ridge_schedule(generations: int, noise_var: float, dim: int, n_samples: int, signal_energy: float) -> list[float]:
    """lambda_1..lambda_generations of the posterior-mean rule above (generation 0 is OLS)."""
    tau2 = signal_energy / dim
    unit = noise_var / (n_samples - dim - 1)
    gain, variance = 1.0, unit
    penalties = []
    for _ in range(generations):
        shrink = gain * tau2 / (gain**2 * tau2 + variance + unit)
        penalties.append(n_samples * (1.0 / shrink - 1.0))
        gain, variance = shrink * gain, shrink**2 * (variance + unit)
    return penalties


class AdaptiveRidge(Strategy):
    name = "adaptive-ridge"
    citation = "Dohmatob, Feng & Kempe 2024, arXiv 2402.07712"
    parameters = {"signal_energy": 1.0}
    signal_energy: float

    def check_parameters(self) -> None:
        if self.signal_energy <= 0:
            raise ParameterError(f"signal_energy must be positive, got {self.signal_energy}")

    def check_task(self, task: TaskDescription) -> None:
        config = task.config
        if "ridge_lambda" not in task.fit_options or any(k not in config for k in REQUIRED_CONFIG):
            raise PluginError(
                f"strategy {self.name!r} needs a task with the fit option 'ridge_lambda' and config keys "
                f"{', '.join(REQUIRED_CONFIG)}; task {task.name!r} does not have them"
            )
        if config["n_samples"] <= config["dim"] + 1:
            raise PluginError(f"strategy {self.name!r} needs n_samples > dim + 1")

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        c = ctx.task.config
        schedule = ridge_schedule(ctx.generation, c["noise_var"], c["dim"], c["n_samples"], self.signal_energy)
        return {"ridge_lambda": schedule[-1]}
