"""Expected excess risk of a chain of fits on FRESH Gaussian rows: exact where a finite-sample formula
exists, deterministic equivalents where none does.

A generation fits N new rows x ~ N(0, Sigma), Sigma = diag(s), labelled by a teacher w_t (the truth, or
the previous generation's generator, independent of the rows) plus noise of variance sigma^2:
w = (Sigma_hat + lambda)^-1 X^T y / N. Only the teacher's mean u and second moment E[w w^T] enter
the next step, and both keep the form E[w w^T] = alpha u u^T + diag(D) through every step below,
so a chain is tracked with d + 1 + d numbers.

- Least squares, N >= d + 2 (exact, any Sigma): u' = u, D' = D + sigma^2 / ((N - d - 1) s), from
  E (X^T X)^-1 = Sigma^-1 / (N - d - 1) (inverse Wishart). This gives Dohmatob, Feng & Kempe 2024
  (arXiv 2402.07712) Theorem 4.1's unregularised case, sigma^2 d/(T-d-1) + n sigma0^2 d/(T0-d-1).
- Minimum-norm least squares, N <= d - 2, Sigma = I (exact): w = P w_t + X^+ eps with P the orthogonal
  projection on the row space, uniformly distributed of rank N: E P = (N/d) I,
  E P A P = a A + b tr(A) I with a + b = N(N+2)/(d(d+2)) and a + b d = N/d (from P_11 ~ Beta), and
  E X^+ X^+T = N/(d(d-N-1)) I (inverse Wishart of the N x N Gram matrix): the over-parametrised
  regime of the paper's Sec. 4, where even noise-free relabelling loses signal every generation.
- Ridge (lambda > 0, any Sigma) and minimum norm with a power-law Sigma: deterministic equivalents
  (Bach 2024, "High-dimensional analysis of double descent for linear regression with random
  projections", SIAM J. Math. Data Sci.; Hastie, Montanari, Rosset & Tibshirani 2022, "Surprises in
  high-dimensional ridgeless least squares interpolation", Ann. Stat.; the form the paper uses for its
  Theorem 4.1 with ridge and its Sec. 5 scaling laws):
  kappa solves kappa - lambda = kappa df1(kappa) / N, df1 = tr Sigma (Sigma + kappa)^-1,
  df2 = tr Sigma^2 (Sigma + kappa)^-2; then E[w] = Sigma (Sigma + kappa)^-1 u and
  E[w w^T] = H E[w_t w_t^T] H + (kappa^2 tr(E[w_t w_t^T] S) + sigma^2) / (N - df2) S, with
  H = Sigma (Sigma + kappa)^-1 and S = Sigma (Sigma + kappa)^-2. These are limits for large d and
  N at fixed ratio; at d = 100 they are within about a percent.
- A pool mixing n1 fresh real rows (teacher w*, noise sigma1^2) with n2 rows of a generator
  (error delta, noise sigma2^2), least squares (exact, any Sigma, N = n1 + n2 >= d + 2): the setting
  of Dohmatob, Feng, Subramonian & Kempe 2024 ("Strong model collapse", arXiv 2410.04840, Sec. 2,
  real and synthetic rows of one distribution). In whitened rows the hat matrix H_X is a uniformly
  distributed rank-d projection of R^N, so with E H_ii^2 = d(d+2)/(N(N+2)) and
  E H_ij^2 = d(N-d)/(N(N+2)(N-1)):
  E = E||delta||^2_Sigma [n2 (d+2)/(N(N+2)) + n2 (n2-1)(N-d)/(N(N+2)(N-1))]
      + (n1 sigma1^2 + n2 sigma2^2) d / (N (N - d - 1)),
  whose limit N -> infinity at fixed p = n2/N is the error floor p^2 E||delta||^2_Sigma.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from collapselab.tasks.linear_regression.setting import Setting

_TOLERANCE = {"xtol": 1e-300, "rtol": 1e-14}


@dataclass(frozen=True)
class Moments:
    """A random weight vector w through its mean u and E[w w^T] = alpha u u^T + diag(D)."""

    u: np.ndarray
    alpha: float
    D: np.ndarray


def truth_vector(setting: Setting) -> np.ndarray:
    """w* for the theory: the power-law w*, or (isotropic: every unit vector is alike) e_1."""
    if setting.spectrum == "power":
        return setting.power_signal
    e1 = np.zeros(setting.dim)
    e1[0] = 1.0
    return e1


def truth(setting: Setting) -> Moments:
    return Moments(truth_vector(setting), 1.0, np.zeros(setting.dim))


def excess_risk(state: Moments, setting: Setting) -> float:
    """E ||w - w*||^2_Sigma."""
    s, w_star = setting.eigenvalues, truth_vector(setting)
    u = state.u
    return float(state.alpha * u @ (s * u) + s @ state.D - 2.0 * w_star @ (s * u) + w_star @ (s * w_star))


def kappa(eigenvalues: np.ndarray, samples: int, lam: float) -> float | None:
    """The effective regularisation: kappa - lambda = kappa df1(kappa) / N (lambda = 0 and N < d: df1 = N)."""
    def df1(k: float) -> float:
        return float(np.sum(eigenvalues / (eigenvalues + k)))

    if lam == 0.0:
        if samples >= len(eigenvalues):
            return None
        return float(brentq(lambda k: df1(k) - samples, 1e-300, 2.0 * eigenvalues.sum() / samples, **_TOLERANCE))
    upper = 2.0 * lam + eigenvalues.sum() / samples
    return float(brentq(lambda k: k - lam - k * df1(k) / samples, lam, upper, **_TOLERANCE))


def _equivalent_step(state: Moments, s: np.ndarray, samples: int, noise_var: float, k: float) -> Moments | None:
    gain = s / (s + k)
    spread = s / (s + k) ** 2
    df2 = float(np.sum(gain**2))
    if samples <= df2:
        return None
    second = state.alpha * state.u @ (spread * state.u) + spread @ state.D
    gamma = (k**2 * second + noise_var) / (samples - df2)
    return Moments(gain * state.u, state.alpha, gain**2 * state.D + gamma * spread)


def _min_norm_isotropic(state: Moments, d: int, samples: int, noise_var: float) -> Moments:
    m = samples
    b = m * (d - m) / (d * (d + 2) * (d - 1))
    a = m * (m + 2) / (d * (d + 2)) - b
    u2 = float(state.u @ state.u)
    scale = m / d
    trace_d = float(state.D.sum())
    spread = state.alpha * b * u2 + a * state.D + b * trace_d + noise_var * m / (d * (d - m - 1))
    return Moments(scale * state.u, state.alpha * a / scale**2, spread)


def step(state: Moments, setting: Setting, samples: int, noise_var: float, lam: float) -> Moments | None:
    """The moments of a fit on ``samples`` fresh rows labelled by ``state`` (``None``: no formula applies)."""
    s, d = setting.eigenvalues, setting.dim
    if lam == 0.0:
        if samples >= d + 2:
            return Moments(state.u, state.alpha, state.D + noise_var / ((samples - d - 1) * s))
        if samples > d - 2:
            return None  # N in {d-1, d, d+1}: the least-squares risk is infinite
        if setting.spectrum == "isotropic":
            return _min_norm_isotropic(state, d, samples, noise_var)
    k = kappa(s, samples, lam)
    return None if k is None else _equivalent_step(state, s, samples, noise_var, k)


def mixture_risk(teacher_error: float, real: int, real_noise_var: float, synthetic: int, synthetic_noise_var: float,
                 dim: int) -> float | None:
    """E||w - w*||^2_Sigma of least squares on ``real`` fresh real rows and ``synthetic`` rows of a
    generator whose own excess risk is ``teacher_error`` (exact; ``None`` when N < d + 2)."""
    n, d, n2 = real + synthetic, dim, synthetic
    if n < d + 2:
        return None
    leverage = n2 * (d + 2) / (n * (n + 2)) + n2 * (n2 - 1) * (n - d) / (n * (n + 2) * (n - 1))
    noise = (real * real_noise_var + synthetic * synthetic_noise_var) * d / (n * (n - d - 1))
    return teacher_error * leverage + noise
