"""Accumulate: each generation trains on the real data plus every synthetic generation so far.

Gerstgrasser et al. 2024, "Is Model Collapse Inevitable? Breaking the Curse of Recursion by
Accumulating Real and Synthetic Data" (arXiv 2404.01413): accumulating bounds the test error
where replacing lets it grow without limit.

The synthetic augmentation loop of Alemohammad et al. 2024 ("Self-Consuming Generative Models Go
MAD", ICLR): the fixed real pool plus synthetic data.

Algorithm, each generation g: the training pool is the real pool followed by S_1..S_g.

``compute=fixed`` (the default): every fit spends the task's budget (optimiser steps, or the
regression task's examples per fit), so the pool grows while the compute does not (the
matched-compute comparison of Kazdan et al. 2024, arXiv 2410.16713). ``compute=growing`` is
Gerstgrasser et al.'s original protocol: a fixed number of epochs over the growing pool, i.e.
the budget scaled by |pool| / |real pool| (generation g trains on g + 1 times the budget of
generation 0; on the regression task, least squares on all of the pool); it spends more than
the budget and is marked as using extra compute.
"""

from __future__ import annotations

from typing import Any

from collapselab import Pool, Strategy, StrategyContext
from collapselab.errors import ParameterError


class Accumulate(Strategy):
    name = "accumulate"
    citation = "Gerstgrasser et al. 2024, arXiv 2404.01413"
    parameters = {"compute": "fixed"}
    compute: str

    def check_parameters(self) -> None:
        if self.compute not in ("fixed", "growing"):
            raise ParameterError(f"compute must be 'fixed' or 'growing', got {self.compute!r}")

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.accumulated(include_real=True)

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        if self.compute == "fixed":
            return {}
        scale = (len(ctx.real) + sum(len(s) for s in ctx.synthetic)) / len(ctx.real)
        if ctx.budget.steps is not None:
            return {"steps": round(ctx.budget.steps * scale)}
        if ctx.budget.examples is not None and "examples" in ctx.task.fit_options:
            return {"examples": round(ctx.budget.examples * scale)}
        return {}
