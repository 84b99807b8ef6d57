"""Reward curation: of every K samples one is kept, chosen as a person would under a reward.

Ferbach, Bertrand, Bose & Gidel 2024, "Self-Consuming Generative Models with Curated Data
Provably Optimize Human Preferences" (NeurIPS 2024, arXiv 2407.09499), Sec. 2: each generation
draws K samples per kept one and keeps sample i of its group with the Bradley-Terry (Luce)
probability exp(beta r_i) / sum_j exp(beta r_j) under a reward r; iterating maximises the
expected reward, and mixing in a share of real data keeps the model close to the data
(their Theorem 2.4's stability with real data).

Here r is the task's :meth:`collapselab.Task.reward`; the generation trains on the curated
samples, with a share ``real_fraction`` of the real pool mixed in (0: curation alone).
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts.selection import one_per_group
from collapselab.errors import ParameterError


class RewardCurate(Strategy):
    name = "reward-curate"
    citation = "Ferbach et al. 2024, NeurIPS, arXiv 2407.09499"
    parameters = {"k": 4, "beta": 1.0, "real_fraction": 0.0}
    requires_hooks = ("reward",)
    k: int
    beta: float
    real_fraction: float

    def check_parameters(self) -> None:
        if self.k < 2:
            raise ParameterError(f"k must be >= 2 (a choice among k samples), got {self.k}")
        if not 0.0 <= self.real_fraction < 1.0:
            raise ParameterError(f"real_fraction must be in [0, 1), got {self.real_fraction}")

    def _sizes(self, ctx: StrategyContext) -> tuple[int, int]:
        n_real = round(self.real_fraction * ctx.budget.real_size)
        return n_real, max(1, ctx.budget.real_size - n_real)

    def sample_size(self, ctx: StrategyContext) -> int:
        return self.k * self._sizes(ctx)[1]

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        return one_per_group(samples, self.beta * ctx.reward(samples), self.k, ctx.rng)

    def training_pool(self, ctx: StrategyContext) -> Pool:
        n_real, _ = self._sizes(ctx)
        return Pool.concat([ctx.subsample(ctx.real, n_real), ctx.latest]) if n_real else ctx.latest
