"""Mix: a fixed fraction of real data in every generation's pool, the rest the latest samples.

After Bertrand et al. 2024, "On the Stability of Iterative Retraining of Generative Models on
their own Data" (ICLR 2024; stable when the real fraction is large enough), and the
partial-fresh loops of Alemohammad et al. 2024, "Self-Consuming Generative Models Go MAD"
(ICLR 2024). Here the real part is drawn from the task's fixed real pool (the synthetic
augmentation loop of Alemohammad et al.); the pool keeps the size of the real pool.

Algorithm, each generation g: round(real_fraction x |real|) items drawn uniformly without
replacement from the real pool, and the rest of the pool's size drawn the same way from S_g.
``real_fraction=1`` trains on the real pool alone (what ``real-only`` does).
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext
from collapselab.errors import ParameterError


class Mix(Strategy):
    name = "mix"
    citation = "Bertrand et al. 2024 (ICLR); Alemohammad et al. 2024 (ICLR)"
    parameters = {"real_fraction": 0.5}
    real_fraction: float

    def check_parameters(self) -> None:
        if not 0.0 <= self.real_fraction <= 1.0:
            raise ParameterError(f"real_fraction must be in [0, 1], got {self.real_fraction}")

    def split(self, size: int, synthetic_available: int) -> tuple[int, int]:
        """How many real and synthetic items a pool of ``size`` takes."""
        n_real = round(self.real_fraction * size)
        return n_real, min(size - n_real, synthetic_available)

    def training_pool(self, ctx: StrategyContext) -> Pool:
        n_real, n_synth = self.split(ctx.budget.real_size, len(ctx.latest))
        parts = [ctx.subsample(ctx.real, n_real), ctx.subsample(ctx.latest, n_synth)]
        return Pool.concat([p for p in parts if len(p)])
