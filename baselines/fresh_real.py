"""Fresh-real: every generation mixes NEW real data with the latest samples (an oracle).

The "fresh data loop" of Alemohammad et al. 2024, "Self-Consuming Generative Models Go MAD"
(ICLR 2024): with enough fresh real data per generation, quality does not collapse.

Algorithm, each generation g: a pool of the real pool's size, a share ``real_fraction`` of it new
real examples drawn from the task's reserve (never the real pool), the rest a uniform subsample of
S_g. It uses real data beyond the task's real pool, so its runs land in the fresh-data track.
"""

from __future__ import annotations

from collapselab import Pool, StrategyContext
from collapselab.baselines.mix import Mix


class FreshReal(Mix):
    name = "fresh-real"
    requires_hooks = ("fresh_real_pool",)
    citation = "Alemohammad et al. 2024, ICLR (fresh data loop)"
    uses_extra_real_data = True

    def training_pool(self, ctx: StrategyContext) -> Pool:
        n_real, n_synth = self.split(ctx.budget.real_size, len(ctx.latest))
        parts = [ctx.fresh_real(n_real) if n_real else None, ctx.subsample(ctx.latest, n_synth)]
        return Pool.concat([p for p in parts if p is not None and len(p)])
