"""Sample-quality metrics in the classifier's feature space."""

from __future__ import annotations

import numpy as np


def _gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b`` (rows = items).

    Dowson & Landau 1982; as FID, Heusel et al. 2017 (NeurIPS):
    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``, with the trace of the root taken
    as ``Tr((S_a^{1/2} S_b S_a^{1/2})^{1/2})``, a symmetric PSD form that stays real and stable.
    """
    mu_a, cov_a = _gaussian(a)
    mu_b, cov_b = _gaussian(b)
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(value, 0.0)


def class_entropy(classes: np.ndarray, n_classes: int = 10) -> float:
    """Entropy (nats) of the histogram of predicted classes; ln 10 = 2.303 when all digits are equally common."""
    counts = np.bincount(np.asarray(classes, dtype=np.int64), minlength=n_classes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
