"""Selection helpers for strategies: uniform subsamples, top-k by score, acceptance by a verifier,
and one draw per group (Bradley-Terry choices).

Both respect replicas (see :mod:`collapselab.contracts.pool`): with ``R`` replicas each replica gets its
own independent selection, and provenance stays per item. A uniform subsample first draws how
many items come from each origin (multivariate hypergeometric, shared by the replicas), then
draws the items within each origin independently per replica; every replica is therefore
marginally an exact uniform sample without replacement.
"""

from __future__ import annotations

import numpy as np

from collapselab.contracts.pool import Pool
from collapselab.errors import PoolError


def subsample(pool: Pool, n: int, rng: np.random.Generator) -> Pool:
    """``n`` items drawn uniformly without replacement."""
    if not 0 <= n <= len(pool):
        raise PoolError(f"cannot subsample {n} items from a pool of {len(pool)}")
    if pool.replicas == 1:
        return pool.subset(np.sort(rng.choice(len(pool), size=n, replace=False)))
    origins, counts = np.unique(pool.origin, return_counts=True)
    if pool.weight is not None and len(np.unique(pool.weight)) > 1:
        raise PoolError("per-replica subsampling of a weighted pool is not supported; subsample before weighting")
    quota = rng.multivariate_hypergeometric(counts, n)
    rows = []
    for origin, k in zip(origins, quota):
        if k == 0:
            continue
        members = np.flatnonzero(pool.origin == origin)
        rows.append(np.sort(members[_smallest(rng.random((len(members), pool.replicas)), int(k))], axis=0))
    if not rows:
        return pool.subset(np.zeros(0, dtype=np.int64))
    return pool.subset(np.concatenate(rows))


def _smallest(keys: np.ndarray, k: int) -> np.ndarray:
    """Per column, the positions of the ``k`` smallest keys, shape ``(k, columns)``: as a set per column,
    exactly the first ``k`` of ``np.argsort(keys, axis=0)`` (a partition, not a sort; a column with a tie
    at the cut, where the two could choose differently, is sorted as argsort sorts it)."""
    chosen = np.argpartition(keys, k - 1, axis=0)[:k]
    cut = np.take_along_axis(keys, chosen[k - 1 : k], axis=0)  # the k-th smallest key of each column
    for column in np.flatnonzero(np.count_nonzero(keys <= cut, axis=0) > k):
        chosen[:, column] = np.argsort(keys[:, column])[:k]
    return chosen


def top_k(pool: Pool, scores: np.ndarray, k: int) -> Pool:
    """The ``k`` items with the highest ``scores`` (shape ``(n,)``, or ``(n, replicas)``
    to rank each replica separately; ties keep the earlier item)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not 0 <= k <= len(pool):
        raise PoolError(f"cannot keep {k} items of a pool of {len(pool)}")
    if scores.shape[0] != len(pool):
        raise PoolError(f"{scores.shape[0]} scores for a pool of {len(pool)} items")
    if np.isnan(scores).any():
        raise PoolError("scores contain NaN")
    if scores.ndim == 1:
        return pool.subset(np.sort(np.argsort(-scores, kind="stable")[:k]))
    if scores.shape != (len(pool), pool.replicas):
        raise PoolError(f"scores must have shape ({len(pool)},) or ({len(pool)}, {pool.replicas}); got {scores.shape}")
    if len(pool.origin_counts()) > 1:
        raise PoolError("per-replica ranking needs a pool of one origin; rank each origin separately")
    return pool.subset(np.sort(np.argsort(-scores, axis=0, kind="stable")[:k], axis=0))


def accepted(pool: Pool, scores: np.ndarray, n: int, rng: np.random.Generator, min_keep: int = 1) -> Pool:
    """At most ``n`` items whose score is >= 0, chosen uniformly among them (per replica).

    With replicas every replica keeps the same number of items, the fewest any replica accepted
    (capped at ``n``). If fewer than ``min_keep`` items pass, the ``min_keep`` best are kept, so
    a strategy always has something to train on."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[0] != len(pool):
        raise PoolError(f"{scores.shape[0]} scores for a pool of {len(pool)} items")
    passed = scores >= 0
    per_replica = passed.sum(axis=0) if scores.ndim == 2 else np.array([passed.sum()])
    keep = int(min(n, per_replica.min()))
    if keep < min_keep:
        return top_k(pool, scores, min(min_keep, len(pool)))
    # accepted items first, in random order: a uniform choice among the accepted ones
    return top_k(pool, passed + rng.random(scores.shape) * 0.5, keep)


def one_per_group(pool: Pool, logits: np.ndarray, group: int, rng: np.random.Generator) -> Pool:
    """One item of every ``group`` consecutive items, drawn with probability proportional to
    exp(logit) within the group (per replica for shape ``(n, replicas)``): the Bradley-Terry /
    Luce choice among ``group`` candidates."""
    logits = np.asarray(logits, dtype=np.float64)
    groups = len(pool) // group
    if groups < 1:
        raise PoolError(f"a pool of {len(pool)} items holds no group of {group}")
    blocks = logits[: groups * group].reshape(groups, group, *logits.shape[1:])
    weights = np.exp(blocks - blocks.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random((groups, 1, *logits.shape[1:]))
    choice = np.minimum((cumulative < draws).sum(axis=1), group - 1)
    index = np.arange(groups).reshape(groups, *([1] * (logits.ndim - 1))) * group + choice
    return pool.subset(index if logits.ndim == 2 else index.reshape(-1))
