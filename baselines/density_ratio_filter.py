"""Density-ratio filtering: keep synthetic samples in proportion to how real they look.

A discriminator between the real pool and the new samples estimates the density ratio
r(x) = p_real(x) / p_model(x) (a calibrated classifier's odds, Sugiyama, Suzuki & Kanamori
2012, "Density Ratio Estimation in Machine Learning"). Two published uses:

* ``mode=rejection``: discriminator rejection sampling (Azadi, Olsson, Darrell, Goodfellow &
  Odena 2019, "Discriminator Rejection Sampling", ICLR): accept sample x with probability
  min(1, r(x) / M); here M is the 95th percentile of r over the samples instead of its maximum
  (a robust bound; CollapseLab's choice, as DRS itself shifts its bound for the same reason);
* ``mode=weight``: likelihood-free importance weighting (Grover, Song, Kapoor, Tran, Agarwal,
  Horvitz & Ermon 2019, "Bias Correction of Learned Generative Models using Likelihood-Free
  Importance Weighting", NeurIPS): train on every sample weighted by r(x), clipped at its 99th
  percentile.

The discriminator is trained each generation on the real pool (never test data) against the
new samples, in the task's feature space (:meth:`collapselab.Task.features`). It is linear
discriminant analysis with a shrunk pooled covariance, whose log density ratio is linear in
the features like a logistic regression's; it is cross-fitted (two folds of the samples: each
fold is scored by the discriminator fitted on the other) so that no sample is judged by a
discriminator that saw it. Replicated pools (the regression task) get one discriminator per
replica and support ``mode=rejection`` only.
"""

from __future__ import annotations

import math

import numpy as np

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts.selection import accepted
from collapselab.errors import ParameterError, PluginError

SHRINKAGE = 0.1
BOUND_QUANTILE = 0.95
WEIGHT_CLIP_QUANTILE = 0.99


def _lda(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(w, b) of the log density ratio w.x + b from features (n, R, k); vectorised over R."""
    mu_r, mu_s = real.mean(axis=0), synthetic.mean(axis=0)  # (R, k)
    centred = np.concatenate([real - mu_r, synthetic - mu_s])  # (n, R, k)
    cov = np.einsum("nrk,nrl->rkl", centred, centred) / max(1, len(centred) - 2)
    k = cov.shape[-1]
    scale = np.trace(cov, axis1=1, axis2=2)[:, None, None] / k
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * scale * np.eye(k) + 1e-12 * np.eye(k)
    w = np.linalg.solve(cov, (mu_r - mu_s)[..., None])[..., 0]  # (R, k)
    b = -np.einsum("rk,rk->r", w, (mu_r + mu_s) / 2)
    return w, b


def log_density_ratio(real: np.ndarray, synthetic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cross-fitted log r(x) for every synthetic item: shape (n,) or (n, R) like the features' items."""
    replicated = synthetic.ndim == 3
    real = real if replicated else real[:, None, :]
    synthetic = synthetic if replicated else synthetic[:, None, :]
    mean, std = real.mean(axis=0), real.std(axis=0) + 1e-9  # standardise on the real pool
    real, synthetic = (real - mean) / std, (synthetic - mean) / std
    fold = rng.permutation(len(synthetic)) % 2
    out = np.zeros(synthetic.shape[:2])
    for part in (0, 1):
        w, b = _lda(real, synthetic[fold != part])
        out[fold == part] = np.einsum("nrk,rk->nr", synthetic[fold == part], w) + b
    return out if replicated else out[:, 0]


class DensityRatioFilter(Strategy):
    name = "density-ratio-filter"
    citation = "Azadi et al. 2019 (ICLR); Grover et al. 2019 (NeurIPS)"
    parameters = {"mode": "rejection", "oversample": 2.0}
    requires_hooks = ("features",)
    mode: str
    oversample: float

    def check_parameters(self) -> None:
        if self.mode not in ("rejection", "weight"):
            raise ParameterError(f"mode must be 'rejection' or 'weight', got {self.mode!r}")
        if self.oversample < 1.0:
            raise ParameterError(f"oversample must be >= 1, got {self.oversample}")

    def sample_size(self, ctx: StrategyContext) -> int:
        factor = self.oversample if self.mode == "rejection" else 1.0
        return math.ceil(ctx.budget.synthetic_size * factor)

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        ratio = log_density_ratio(np.asarray(ctx.features(ctx.real)), np.asarray(ctx.features(samples)), ctx.rng)
        if self.mode == "weight":
            if samples.replicas > 1:
                raise PluginError(f"strategy {self.name!r}: mode=weight needs one weight per item; this task's pools "
                                  "hold replicas (use mode=rejection)")
            weight = np.exp(ratio - ratio.max())
            return samples.with_weight(np.minimum(weight, np.quantile(weight, WEIGHT_CLIP_QUANTILE)))
        bound = np.quantile(ratio, BOUND_QUANTILE, axis=0)
        accept = ctx.rng.random(ratio.shape) < np.exp(np.minimum(ratio - bound, 0.0))
        return accepted(samples, np.where(accept, 1.0, -1.0), ctx.budget.synthetic_size, ctx.rng, 1)

    def training_pool(self, ctx: StrategyContext) -> Pool:
        return ctx.latest
