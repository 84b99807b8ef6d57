"""Exact expected excess risk, given the fixed design, of any chain of fits on whole copies of it.

With the fixed design X (T rows), every fit the loop can make from whole copies of the design is a
spectral function of Sigma_hat = X^T X / T = V diag(s) V^T applied to averaged labels, so in the
eigenbasis each weight vector is

    V^T w = a * omega + sum_o b_o * xi_o,     omega = V^T w*,   xi_o = V^T X^T eps_o / T,

with coefficient vectors a, b_o (length d, elementwise products) and one independent noise term xi_o
per origin o (the real labels, or generation o's samples averaged over their k_o copies:
E xi_o xi_o^T = (sigma_o^2 / k_o) diag(s) / T). A fit with penalty lambda on a pool averaging origins
with weights nu_o maps the teachers' coefficients through H = s / (s + lambda) and adds
nu_o / (s + lambda) to b_o (lambda = 0: least squares, and on the null space of Sigma_hat, where
s = 0, the minimum-norm solution: H = 0, 1/s -> 0). Then, with M = V^T Sigma V,

    E[ ||w - w*||^2_Sigma | X ] = ((a - 1) * omega)^T M ((a - 1) * omega)
                                  + sum_o (sigma_o^2 / k_o) / T * sum_i M_ii b_o,i^2 s_i,

the bias averaged over w* uniform on the unit sphere (E omega omega^T = I / d) for the isotropic
spectrum. This is exact for ANY spectrum, T above or below d, least squares or ridge, with or
without a regularised generator. Its expectation over X gives the papers' closed forms: replace
n sigma^2 d/(T-d-1) (Dohmatob, Feng & Kempe 2024, arXiv 2402.07712, Theorem 4.1 with T0 = T;
Gerstgrasser et al. 2024, arXiv 2404.01413, Sec. 2) and accumulate
sigma^2 d/(T-d-1) sum_{i<=n} 1/i^2 (Gerstgrasser et al. 2024, Sec. 2), both because
E tr(Sigma (X^T X)^-1) = d / (T - d - 1) for Gaussian rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from collapselab.tasks.linear_regression.setting import Setting


@dataclass(frozen=True)
class Coefficients:
    """A weight vector as coefficients on w* (``a``) and on each origin's noise (``b``)."""

    a: np.ndarray
    b: Mapping[int, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One origin averaged into a pool: its teacher, its noise variance per copy average, its weight."""

    origin: int
    teacher: Coefficients
    noise_var: float  # sigma_o^2 / k_o
    weight: float  # nu_o


class FixedDesign:
    """The spectral quantities of one fixed design and the truth."""

    def __init__(self, setting: Setting, eigenvalues: np.ndarray, eigenvectors: np.ndarray,
                 w_star: np.ndarray | None) -> None:
        self.setting = setting
        self.s = eigenvalues
        self.v = eigenvectors
        self.omega = None if w_star is None else eigenvectors.T @ w_star  # None: isotropic, averaged
        tol = eigenvalues.max(initial=0.0) * len(eigenvalues) * np.finfo(float).eps * 10
        self.range = eigenvalues > tol

    @cached_property
    def metric(self) -> np.ndarray:
        """M = V^T Sigma V."""
        return (self.v.T * self.setting.eigenvalues) @ self.v

    def truth(self) -> Coefficients:
        return Coefficients(np.ones_like(self.s))

    def filters(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """H = s/(s+lambda) and Q = 1/(s+lambda), with the minimum-norm limit on the null space."""
        if lam > 0:
            return self.s / (self.s + lam), 1.0 / (self.s + lam)
        safe = np.where(self.range, self.s, 1.0)
        return self.range.astype(float), np.where(self.range, 1.0 / safe, 0.0)

    def fit(self, sources: Sequence[Source], lam: float) -> Coefficients:
        gain, inverse = self.filters(lam)
        a = gain * sum(src.weight * src.teacher.a for src in sources)
        b: dict[int, np.ndarray] = {}
        for src in sources:
            for origin, coefficient in src.teacher.b.items():
                b[origin] = b.get(origin, 0.0) + src.weight * coefficient
        b = {origin: gain * coefficient for origin, coefficient in b.items()}
        for src in sources:
            b[src.origin] = b.get(src.origin, 0.0) + src.weight * inverse
        return Coefficients(a, b)

    def excess_risk(self, w: Coefficients, noise_vars: Mapping[int, float]) -> float:
        """E[ ||w - w*||^2_Sigma | X ] for the coefficients ``w``; ``noise_vars``: origin -> sigma_o^2 / k_o."""
        diag = np.diag(self.metric)
        shortfall = w.a - 1.0
        if self.omega is None:
            bias = float(np.sum(shortfall**2 * diag)) / len(self.s)
        else:
            e = shortfall * self.omega
            bias = float(e @ self.metric @ e)
        rows = self.setting.n_samples
        variance = sum(noise_vars[o] / rows * float(np.sum(diag * b**2 * self.s)) for o, b in w.b.items())
        return bias + variance
