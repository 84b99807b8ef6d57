"""Accumulate-synthetic: each generation trains on every synthetic generation so far, and no real data.

The fully synthetic loop of Alemohammad et al. 2024 ("Self-Consuming Generative Models Go MAD",
ICLR 2024, Sec. 3), in which each generation trains only on synthetic data sampled from previous
generations, in the form that keeps its whole history: accumulation as Gerstgrasser et al. 2024
(arXiv 2404.01413) define it, without the real data. It separates what keeping the history buys
(against replace, which keeps one generation) from what the real data buy (against accumulate).

Algorithm, each generation g: the training pool is S_1..S_g (no real item after generation 0);
every fit spends the task's standard budget.
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext


class AccumulateSynthetic(Strategy):
    name = "accumulate-synthetic"
    citation = "Alemohammad et al. 2024, ICLR (fully synthetic loop); Gerstgrasser et al. 2024, arXiv 2404.01413"

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.accumulated(include_real=False)
