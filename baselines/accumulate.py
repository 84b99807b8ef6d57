"""Accumulate: each generation trains on the real data plus every synthetic generation so far.

Gerstgrasser et al. 2024, "Is Model Collapse Inevitable? Breaking the Curse of Recursion by
Accumulating Real and Synthetic Data" (arXiv 2404.01413): accumulating bounds the test error
where replacing lets it grow without limit.
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext


class Accumulate(Strategy):
    name = "accumulate"
    citation = "Gerstgrasser et al. 2024, arXiv 2404.01413"

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.accumulated(include_real=True)
