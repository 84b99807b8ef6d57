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


# --------------------------------------------------- collapse-profile measures
#: A sample the classifier gives less than this probability for its likeliest digit is unplaceable.
PLACEABLE = 0.5
#: Nearest neighbours defining each point's ball in improved precision and recall.
PR_NEIGHBOURS = 3
#: How many of the rarest digit classes of the real training pool make up the tail stratum.
TAIL_CLASSES = 2


def variance_ratio(samples: np.ndarray, real: np.ndarray) -> float:
    """Total variance (trace of the covariance, rows = items) of ``samples`` over that of ``real``:
    1 for samples as spread as real data, falling as the samples' spread collapses."""
    def total(x: np.ndarray) -> float:
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return float(flat.var(axis=0, ddof=1).sum())

    return total(samples) / total(real)


def mode_coverage(classes: np.ndarray, n_classes: int = 10) -> float:
    """exp(class entropy) / n_classes: the share of the classes the samples effectively cover
    (1 when all digits are equally common, 0.9 when one of ten is missing and the rest even)."""
    return float(np.exp(class_entropy(classes, n_classes)) / n_classes)


def unplaceable_share(probabilities: np.ndarray) -> float:
    """Share of samples whose likeliest class has probability below ``PLACEABLE``: mixtures of digits."""
    return float(np.mean(np.max(probabilities, axis=1) < PLACEABLE))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def _covered(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each query, whether it lies in some reference point's ball of radius its k-th neighbour distance."""
    within = _pairwise(reference, reference)
    radii = np.sort(within, axis=1)[:, k]  # column 0 is the point itself
    return np.asarray((_pairwise(queries, reference) <= radii[None, :]).any(axis=1))


def precision_recall(real: np.ndarray, samples: np.ndarray, k: int = PR_NEIGHBOURS) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, NeurIPS, Sec. 2): precision is the
    share of samples inside the real data's manifold (the union of balls around real points reaching
    their k-th nearest real neighbour), recall the share of real points inside the samples' manifold.
    Precision falls when samples leave the real support, recall when they stop covering it."""
    return float(_covered(real, samples, k).mean()), float(_covered(samples, real, k).mean())


def tail_classes(labels: np.ndarray, n_classes: int = 10, count: int = TAIL_CLASSES) -> np.ndarray:
    """The ``count`` least frequent classes of ``labels`` (ties: the smaller digit first)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    return np.sort(np.lexsort((np.arange(n_classes), counts))[:count])
