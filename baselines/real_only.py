"""Real-only: every generation trains on the real pool again and never on a synthetic item.

The reference point of the synthetic augmentation loop of Alemohammad et al. 2024
("Self-Consuming Generative Models Go MAD", ICLR 2024, Sec. 3): a loop that has the fixed real
pool cannot do worse than ignoring its synthetic data, so this is the augmentation track's
ceiling (for the regression task's fixed design, exactly generation 0's model every generation).
It answers no question about synthetic data: the leaderboard shows it beside the augmentation
track and does not rank it, as it shows, and does not rank, any entry whose records show no
synthetic item trained on. CollapseLab's own reference, not a published mitigation.

Algorithm, each generation g: the training pool is the real pool; the samples drawn from the
previous model are recorded and never trained on.
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext


class RealOnly(Strategy):
    name = "real-only"
    citation = "Alemohammad et al. 2024, ICLR (the synthetic augmentation loop's ceiling)"

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.real
