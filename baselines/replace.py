"""Replace: each generation trains only on the previous model's samples.

The classic self-consuming loop in which collapse was first shown (Shumailov et al. 2024,
"AI models collapse when trained on recursively generated data", Nature 631).
"""

from __future__ import annotations

from collapselab import Pool, Strategy, StrategyContext


class Replace(Strategy):
    name = "replace"
    citation = "Shumailov et al. 2024, Nature 631:755-759"

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest
