"""Verifier filtering: draw more samples than needed and keep those a verifier ranks best.

Feng et al. 2024, "Beyond Model Collapse: Scaling Up with Synthesized Data Requires
Verification" (arXiv 2406.07515). The verifier is generation 0's model, trained on the real
pool only; the per-sample score is the task's (``Task.score``: e.g. the residual under the
verifier for regression). Each generation draws ``synthetic_size / keep_fraction`` samples
and keeps the best ``synthetic_size``, then trains on them alone (``accumulate=false``,
comparable with replace) or on everything so far (``accumulate=true``).
"""

from __future__ import annotations

import math

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts.selection import top_k
from collapselab.errors import ParameterError


class VerifierFilter(Strategy):
    name = "verifier-filter"
    requires_hooks = ("verify",)
    citation = "Feng et al. 2024, arXiv 2406.07515"
    parameters = {"keep_fraction": 0.5, "accumulate": False}

    def check_parameters(self) -> None:
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ParameterError(f"keep_fraction must be in (0, 1], got {self.keep_fraction}")

    def sample_size(self, ctx: StrategyContext) -> int:
        return math.ceil(ctx.budget.synthetic_size / self.keep_fraction)

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        keep = min(len(samples), ctx.budget.synthetic_size)
        return top_k(samples, ctx.verify(samples), keep)

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.accumulated(include_real=True) if self.accumulate else ctx.latest
