"""Least squares and ridge on a pool, from its sufficient statistics, for all trials at once.

The fit is w = (Sigma_hat + lambda I)^-1 m with Sigma_hat = X^T W X / N and m = X^T W y / N
(W the item weights, N their sum): the per-sample normalisation of Dohmatob et al. 2024
(arXiv 2402.07712, Sec. 3), so lambda = 0 is least squares and, where Sigma_hat is singular, the
minimum-norm least-squares solution (the limit lambda -> 0+).

Fixed design: the pool enters only through per-row weight counts c and label sums b (shape
(T, trials)), so Sigma_hat = X^T diag(c) X / N and m = X^T b / N: O(n trials) work to read the
pool plus matrix products with the stored design, never a copy of a row. When every trial sees
the same counts (every pool made of whole items of the loop's samples, or a 1-D selection), one
d x d eigendecomposition serves all trials and every lambda.

The budget (:func:`budget_weights`): a fit processes exactly ``examples`` examples drawn from its
pool, the closed-form analogue of the neural tasks' optimiser steps x batch size, so a fit costs
the same whatever the size of its pool. The draw is the neural tasks' (``BudgetSampler`` in
:mod:`collapselab.toolkit.training`): successive random permutations of the items of positive
weight, cut at ``examples``; each item's weight then scales its drawn copies, as it scales a
minibatch item's loss there. Without replacement, because then a pool of exactly ``examples``
items is fitted whole (the papers' fit, whose closed-form theory stays exact) and a smaller pool
is cycled evenly (counts differ by at most one), never adding the duplicates a with-replacement
draw would. Each Monte-Carlo trial draws its own permutation: trials replicate the whole fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from collapselab import Pool
from collapselab.errors import TaskError


@dataclass(frozen=True)
class Statistics:
    """Sigma_hat and m of a pool: ``gram`` (d, d) shared by all trials or (trials, d, d); ``moment`` (trials, d).

    ``spanning``: every trial's rows span R^d (at least d distinct rows of positive weight, Gaussian rows
    being in general position), so least squares has a unique solution."""

    gram: np.ndarray
    moment: np.ndarray
    spanning: bool = True


def budget_weights(pool: Pool, examples: int, rng: np.random.Generator) -> np.ndarray | None:
    """Per item and trial, shape (n, trials): the item's weight times how often a fit of ``examples``
    examples draws it (successive random permutations of the items of positive weight, cut at
    ``examples``, one draw per trial). ``None`` when the draw is whole passes over the pool: every
    item drawn equally often, which is the pool's own fit (least squares and the per-sample ridge
    are unchanged by repeating every item k times)."""
    if examples < 1:
        raise TaskError(f"task 'linear_regression': fit option 'examples' must be >= 1, got {examples}")
    positive = np.ones(len(pool), dtype=bool) if pool.weight is None else pool.weight > 0
    items = np.flatnonzero(positive)
    if not len(items):
        raise TaskError("task 'linear_regression': cannot fit a pool whose weights sum to zero")
    passes, rest = divmod(int(examples), len(items))
    if rest == 0:
        return None
    trials = pool.replicas
    keys = rng.random((len(items), trials), dtype=np.float32)
    drawn = np.argpartition(keys, rest - 1, axis=0)[:rest]  # the first ``rest`` of a random permutation, per trial
    counts = np.zeros((len(pool), trials))
    counts[items] = passes
    counts[items[drawn], np.arange(trials)] += 1.0  # a trial draws each item at most once: no repeated index
    return counts if pool.weight is None else counts * pool.weight[:, None]


def _weight_total(weights: np.ndarray | None, n: int) -> np.ndarray:
    """The weights' sum N: a scalar array, or one per trial for (n, trials) weights."""
    total = np.asarray(float(n)) if weights is None else np.asarray(weights.sum(axis=0), dtype=np.float64)
    if np.any(total <= 0):
        raise TaskError("task 'linear_regression': cannot fit a pool whose weights sum to zero")
    return total


def _row_sums(rows: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """sum of ``values`` (n, trials) over the items of each row, shape (size, trials); ``rows`` is (n,)."""
    n = len(rows)
    if n % size == 0 and np.array_equal(rows, np.tile(np.arange(size, dtype=rows.dtype), n // size)):
        return values.reshape(n // size, size, -1).sum(axis=0)  # whole copies of the design: no scatter
    order = np.argsort(rows, kind="stable")
    present, starts = np.unique(rows[order], return_index=True)
    sums = np.zeros((size, values.shape[1]))
    sums[present] = np.add.reduceat(values[order], starts, axis=0)
    return sums


def fixed_design_statistics(pool: Pool, design: np.ndarray, outer: Callable[[], np.ndarray],
                            weights: np.ndarray | None = None) -> Statistics:
    """Statistics of a pool of the fixed design (payload ``row``, ``y``); ``outer()`` gives the rows' packed
    outer products (:attr:`data.FixedDesignData.outer_products`), needed only when trials count rows differently.
    ``weights``: per item and trial (n, trials), e.g. :func:`budget_weights`; default the pool's own."""
    rows, y = pool["row"], pool["y"]
    size, trials = design.shape[0], pool.replicas
    if weights is None:
        weights = pool.weight
    total = _weight_total(weights, len(pool))
    weighted_y = y if weights is None else y * (weights if weights.ndim == 2 else weights[:, None])
    if (weights is None or weights.ndim == 1) and np.array_equal(rows, np.broadcast_to(rows[:, :1], rows.shape)):
        shared = rows[:, 0]  # the same rows and weights in every trial
        counts = np.bincount(shared, weights=weights, minlength=size)
        sums = _row_sums(shared, weighted_y, size)
        gram = (design.T * counts) @ design / total
        return Statistics(gram, (sums.T @ design) / total)
    flat = (rows.astype(np.int64) * trials + np.arange(trials)).ravel()
    per_item = None if weights is None else np.broadcast_to(weights if weights.ndim == 2 else weights[:, None], rows.shape).ravel()
    counts = np.bincount(flat, weights=per_item, minlength=size * trials).reshape(size, trials)
    sums = np.bincount(flat, weights=weighted_y.ravel(), minlength=size * trials).reshape(size, trials)
    per_trial = np.broadcast_to(total, (trials,))[:, None]
    moment = (sums.T @ design) / per_trial
    if np.array_equal(counts, np.broadcast_to(counts[:1], counts.shape)):
        # every row counted equally in each trial (whole copies of the design, in any order): each
        # trial's counts sum to N, so Sigma_hat = X^T X / T in every trial
        return Statistics(design.T @ design / size, moment)
    spanning = bool(np.min(np.count_nonzero(counts > 0, axis=0)) >= design.shape[1])
    return Statistics(_per_trial_grams(counts, outer(), design.shape[1], per_trial), moment, spanning)


def _per_trial_grams(counts: np.ndarray, outer: np.ndarray, dim: int, total: np.ndarray) -> np.ndarray:
    """X^T diag(c_t) X / N_t for every trial t: one matrix product with the rows' packed outer products."""
    packed = counts.T @ outer / total  # (trials, d(d+1)/2)
    grams = np.empty((counts.shape[1], dim, dim))
    upper = np.triu_indices(dim)
    grams[:, upper[0], upper[1]] = packed
    grams[:, upper[1], upper[0]] = packed
    return grams


def fresh_design_statistics(pool: Pool, weights: np.ndarray | None = None) -> Statistics:
    """Statistics of a pool whose items carry their rows (payload ``x``, ``y``); ``weights`` as in
    :func:`fixed_design_statistics`."""
    x = pool["x"].transpose(1, 0, 2)  # (trials, n, d)
    y = pool["y"].T[:, :, None]
    if weights is None:
        weights = pool.weight
    total = _weight_total(weights, len(pool))
    per_trial = np.broadcast_to(total, (x.shape[0],))[:, None, None]
    if weights is None:
        weighted, positive = x, len(pool)
    else:
        per_item = weights.T if weights.ndim == 2 else weights[None, :]  # (trials or 1, n)
        weighted = x * per_item[:, :, None]
        positive = int(np.min(np.count_nonzero(per_item > 0, axis=1)))
    gram = np.matmul(weighted.transpose(0, 2, 1), x) / per_trial
    return Statistics(gram, np.matmul(weighted.transpose(0, 2, 1), y)[..., 0] / per_trial[:, :, 0], positive >= x.shape[2])


def _spectral_filter(eigenvalues: np.ndarray, lam: float) -> np.ndarray:
    """1 / (s + lambda), and for lambda = 0 the pseudo-inverse (0 on the null space)."""
    if lam > 0:
        return 1.0 / (eigenvalues + lam)
    tol = eigenvalues.max(axis=-1, keepdims=True, initial=0.0) * eigenvalues.shape[-1] * np.finfo(float).eps * 10
    safe = np.where(eigenvalues > tol, eigenvalues, 1.0)
    return np.where(eigenvalues > tol, 1.0 / safe, 0.0)


def solve(stats: Statistics, penalties: Sequence[float]) -> list[np.ndarray]:
    """The weights (trials, d) for each ridge penalty (0: least squares / minimum norm)."""
    if stats.gram.ndim == 2:
        s, v = np.linalg.eigh(stats.gram)
        coefficients = stats.moment @ v  # (trials, d) in the eigenbasis
        return [(coefficients * _spectral_filter(s, lam)) @ v.T for lam in penalties]
    out = []
    eye = np.eye(stats.gram.shape[-1])
    for lam in penalties:
        if lam > 0 or stats.spanning:
            system = stats.gram + lam * eye if lam > 0 else stats.gram
            out.append(np.linalg.solve(system, stats.moment[..., None])[..., 0])
        else:  # under-determined least squares: the minimum-norm solution
            s, v = np.linalg.eigh(stats.gram)
            coefficients = np.einsum("tde,td->te", v, stats.moment) * _spectral_filter(s, lam)
            out.append(np.einsum("tde,te->td", v, coefficients))
    return out
