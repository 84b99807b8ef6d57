"""Verifier filtering: keep only the synthetic samples an independent verifier accepts.

Feng, Dohmatob, Yang, Charton & Kempe 2024, "Beyond Model Collapse: Scaling Up with Synthesized
Data Requires Verification" (arXiv 2406.07515): synthesized data are selected by a verifier
that is not the generator, of tunable quality, before retraining; with a good enough verifier
training on the selection avoids collapse, and performance shows a phase transition in the
verifier's quality.

Algorithm, each generation g:
  1. draw ``oversample`` x the default number of samples from M_{g-1};
  2. score them with the task's verifier of quality ``quality`` (:meth:`collapselab.Task.verify`,
     independent of the generator chain; each task card says what it checks);
  3. keep the accepted ones (score >= 0, a threshold, not a top-k), at most the default number,
     chosen uniformly among the accepted; should fewer than 10% of the default number pass, the
     10% the verifier rates best are kept so that there is something to train on (CollapseLab's
     choice; the paper's setting always accepts enough);
  4. train on the kept samples alone (``accumulate=false``, comparable with replace) or on the
     real data and every kept generation so far (``accumulate=true``).
"""

from __future__ import annotations

import math

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts.selection import accepted
from collapselab.errors import ParameterError

MIN_KEEP = 0.1


class VerifierFilter(Strategy):
    name = "verifier-filter"
    citation = "Feng et al. 2024, arXiv 2406.07515"
    parameters = {"quality": 1.0, "oversample": 2.0, "accumulate": False}
    requires_hooks = ("verify",)
    quality: float
    oversample: float
    accumulate: bool

    def check_parameters(self) -> None:
        if not 0.0 <= self.quality <= 1.0:
            raise ParameterError(f"quality must be in [0, 1], got {self.quality}")
        if self.oversample < 1.0:
            raise ParameterError(f"oversample must be >= 1, got {self.oversample}")

    def sample_size(self, ctx: StrategyContext) -> int:
        return math.ceil(ctx.budget.synthetic_size * self.oversample)

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        size = ctx.budget.synthetic_size
        return accepted(samples, ctx.verify(samples, self.quality), size, ctx.rng, max(1, math.ceil(MIN_KEEP * size)))

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.accumulated(include_real=True) if self.accumulate else ctx.latest
