"""Accumulate-subsample: a fixed-size uniform sample of the accumulated data each generation.

Kazdan et al. 2024, "Collapse or Thrive? Perils and Promises of Synthetic Data in a
Self-Generating World" (arXiv 2410.16713): the accumulated pool is subsampled to a fixed
size, so every generation costs the same compute as replace.
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext
from collapselab.errors import ParameterError


class AccumulateSubsample(Strategy):
    name = "accumulate-subsample"
    citation = "Kazdan et al. 2024, arXiv 2410.16713"
    parameters = {"size_factor": 1.0}
    size_factor: float

    def check_parameters(self) -> None:
        if self.size_factor <= 0:
            raise ParameterError(f"size_factor must be positive, got {self.size_factor}")

    def training_pool(self, ctx: StrategyContext) -> Pool:
        pool = ctx.accumulated(include_real=True)
        size = min(len(pool), max(1, round(self.size_factor * ctx.budget.real_size)))
        return ctx.subsample(pool, size)
