"""The regression task's measures of the collapse profile (:mod:`collapselab.scoring.profile`).

Rows x ~ N(0, Sigma), Sigma = diag(s), so a generator w labels with y = x.w + N(0, sigma0^2):

- ``variance_ratio``: the spread of the generator's labels relative to the real labels',
  (||w||^2_Sigma + sigma0^2) / (||w*||^2_Sigma + sigma^2), means over trials (the variance of
  Schaeffer et al. 2025's definition 5: shrunk weights, as ridge makes, lower it).
- ``label_noise_ratio``: the variance of the synthetic labels' noise around the truth relative to
  the real labels' noise, (||w - w*||^2_Sigma + sigma0^2) / sigma^2: how far the generator's labels
  have drifted (the error that accumulates under replace; Dohmatob et al. 2024).
- ``tail_loss`` and ``common_loss`` (power-law spectra only): the excess risk along the quarter of
  the eigen-directions with the smallest eigenvalues (the rarely excited features: the tail) and
  along the quarter with the largest (the common ones), fixed by the spectrum in advance. An
  isotropic Sigma has no tail: not measurable, so not recorded.

There is no hallucination measure: every label is a real number on a real row.
"""

from __future__ import annotations

import numpy as np

TAIL_SHARE = 0.25


def sigma_norm2(eigenvalues: np.ndarray, w: np.ndarray) -> np.ndarray:
    """||w||^2_Sigma per trial (rows of ``w``)."""
    return np.sum(eigenvalues * w**2, axis=-1)


def variance_ratio(eigenvalues: np.ndarray, generator: np.ndarray, w_star: np.ndarray, noise_var: float,
                   generator_noise_var: float) -> float:
    synthetic = sigma_norm2(eigenvalues, generator).mean() + generator_noise_var
    real = sigma_norm2(eigenvalues, w_star).mean() + noise_var
    return float(synthetic / real)


def label_noise_ratio(eigenvalues: np.ndarray, generator: np.ndarray, w_star: np.ndarray, noise_var: float,
                      generator_noise_var: float) -> float | None:
    """``None`` for noise-free real labels (no real noise to compare with)."""
    if noise_var <= 0:
        return None
    return float((sigma_norm2(eigenvalues, generator - w_star).mean() + generator_noise_var) / noise_var)


def strata(eigenvalues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the tail (smallest eigenvalues) and common (largest) quarters, at least one each."""
    order = np.argsort(-eigenvalues, kind="stable")
    k = max(1, int(round(TAIL_SHARE * eigenvalues.size)))
    return order[-k:], order[:k]


def stratum_losses(eigenvalues: np.ndarray, weights: np.ndarray, w_star: np.ndarray) -> dict[str, float]:
    """``tail_loss`` and ``common_loss``: the excess risk of ``weights`` along each stratum, mean over trials."""
    tail, common = strata(eigenvalues)
    error = eigenvalues * (weights - w_star) ** 2
    return {"tail_loss": float(error[..., tail].sum(axis=-1).mean()),
            "common_loss": float(error[..., common].sum(axis=-1).mean())}
