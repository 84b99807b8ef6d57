"""Closed-form expected excess risk of OLS under recursive relabelling.

Setting (Gerstgrasser et al. 2024, arXiv 2404.01413, Sec. 2; Dohmatob et al. 2024,
arXiv 2402.07712): isotropic Gaussian design with T rows and d columns, label noise
variance sigma^2, every synthetic example relabelled by the previous model plus fresh noise.

Write the error of generation g's OLS fit as a combination of the independent label-noise
draws of every generation, w_g - w* = sum_i c_i A eps_i with A = (X^T X)^{-1} X^T. For the
fixed design, a pool holding k whole copies of the design with labels of origins o_1..o_k
gives c^(g) = (1/k) sum_j (c^(parent(o_j)) + e_{o_j}), where parent(real) has c = 0 and
parent(o) = o - 1. Then E||w_g - w*||^2 = sigma^2 d / (T - d - 1) * ||c^(g)||^2, because
E tr (X^T X)^{-1} = d / (T - d - 1) (inverse Wishart). This gives the papers' curves:
replace n sigma^2 d/(T-d-1) after n fits, accumulate sigma^2 d/(T-d-1) sum_{i<=n} 1/i^2.

With a fresh design each generation the recursion holds only when each fit uses one whole
origin (a replace-style chain); otherwise the design matrices do not cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def unit_risk(dim: int, n_samples: int, noise_var: float) -> float:
    """sigma^2 d / (T - d - 1): the expected excess risk of one OLS fit on T Gaussian rows."""
    return noise_var * dim / (n_samples - dim - 1)


def replace_risk(fits: int, dim: int, n_samples: int, noise_var: float) -> float:
    return fits * unit_risk(dim, n_samples, noise_var)


def accumulate_risk(fits: int, dim: int, n_samples: int, noise_var: float) -> float:
    return unit_risk(dim, n_samples, noise_var) * float(np.sum(1.0 / np.arange(1, fits + 1) ** 2))


def noise_coefficients(records: Sequence[Mapping[str, Any]], n_samples: int, design: str) -> np.ndarray | None:
    """Coefficients c^(g) of the latest generation over the noise draws eps_0..eps_g.

    ``records`` are the generation records so far (the latest last). Returns ``None`` when
    the pools fall outside the closed form: partial copies of an origin (or an origin drawn
    at another size than T, as a filter does), weights, ridge, fresh real data, or a fresh
    design with mixed origins. Curation is assumed to leave kept samples unchanged.
    """
    coefficients: list[np.ndarray] = []
    size = len(records)
    for entry in records:
        if entry["generation"] > 0 and entry["compute"]["samples"] != n_samples:
            return None
        composition, options = entry["composition"], entry.get("fit_options", {})
        if composition.get("weighted") or composition.get("fresh_real", 0) or options.get("ridge_lambda", 0.0):
            return None
        origins: list[int] = []
        if composition["real"]:
            if composition["real"] != n_samples:
                return None
            origins.append(0)
        for origin, count in composition["synthetic"].items():
            if count != n_samples:
                return None
            origins.append(int(origin))
        if not origins or (design == "fresh" and len(origins) > 1):
            return None
        c = np.zeros(size)
        for origin in origins:
            c[origin] += 1.0
            if origin > 0:
                c += coefficients[origin - 1]
        coefficients.append(c / len(origins))
    return coefficients[-1]


def theory_loss(
    records: Sequence[Mapping[str, Any]], dim: int, n_samples: int, noise_var: float, design: str
) -> float | None:
    """The expected excess risk of the latest generation, or ``None`` where no closed form applies."""
    if n_samples <= dim + 1:
        return None
    c = noise_coefficients(records, n_samples, design)
    if c is None:
        return None
    return unit_risk(dim, n_samples, noise_var) * float(c @ c)
