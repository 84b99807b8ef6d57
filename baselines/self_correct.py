"""Self-correction: every synthetic sample is moved toward the data manifold by an expert before
it is trained on, together with the real data.

Gillman, Freeman, Aggarwal, Hsu, Luo, Tian & Sun 2024, "Self-Correcting Self-Consuming Loops
for Generative Model Training" (ICML 2024, arXiv 2402.07087), Sec. 3-4: each iteration samples
lambda x |real| synthetic points from the latest model, applies a self-correction function of
strength gamma (an expert: there, a physics simulator for human motion), and trains on the real
data together with the corrected samples; correction makes the loop exponentially more stable
and lets the synthetic share grow (lambda up to 1, i.e. 100%).

Here the expert is the task's :meth:`collapselab.Task.correct` (conformers: MMFF94 relaxation
in RDKit; regression: labels shrunk toward an independent verifier); tasks without a
defensible expert are refused. ``synthetic_ratio`` is lambda, ``gamma`` the strength.
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext
from collapselab.errors import ParameterError


class SelfCorrect(Strategy):
    name = "self-correct"
    citation = "Gillman et al. 2024, ICML, arXiv 2402.07087"
    parameters = {"gamma": 0.5, "synthetic_ratio": 1.0}
    requires_hooks = ("correct",)
    gamma: float
    synthetic_ratio: float

    def check_parameters(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ParameterError(f"gamma must be in [0, 1], got {self.gamma}")
        if not self.synthetic_ratio > 0:
            raise ParameterError(f"synthetic_ratio must be positive, got {self.synthetic_ratio}")

    def sample_size(self, ctx: StrategyContext) -> int:
        return max(1, round(self.synthetic_ratio * ctx.budget.real_size))

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        return ctx.correct(samples, self.gamma)

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return Pool.concat([ctx.real, ctx.latest])
