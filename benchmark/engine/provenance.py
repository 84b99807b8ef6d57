"""Provenance checks: every item a strategy returns is an item the loop gave it.

The loop keeps a ledger of keyed item digests (:meth:`collapselab.Pool.row_digests`) per
origin: the real pool and the fresh real data drawn through the context (origin -1), and each
generation's samples, including what the task's expert made of them (origin g). After every
strategy hook it checks that each returned item's digest is in the ledger of the origin the
item claims, so a strategy cannot return made-up items labelled as real (or as samples), and
that the real pool still has its digest, so a strategy cannot have edited it. For a pool with
replicas every (item, replica) is checked in its own replica.

One ledger serves a whole run: the real pool and the kept samples S_1..S_g stay; what a
generation drew (its raw samples, corrected items, fresh real data) is legitimate only until
:meth:`Ledger.end_generation`. A returned block that is a whole known part in order (a
strategy passing on S_h or the real pool) is accepted by one comparison; any other selection
is looked up in a sorted, per-replica salted copy of the origin's digests, built once per
origin and part. Digests are computed when a check first needs them, once per part: a run whose
strategy returns only pools the loop rebuilt from its own (:meth:`collapselab.Pool.derives_from`)
hashes nothing. The real pool's content is fingerprinted once, unless it lives in immutable
memory (:attr:`collapselab.Pool.is_sealed`), where nothing can change it.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from collapselab.contracts.pool import REAL, Pool
from collapselab.errors import PluginError

KEY_WORDS = 1 << 16


class _Part:
    """Items of one origin the ledger accepts: a pool, and its digests once computed."""

    __slots__ = ("pool", "_digests")

    def __init__(self, pool: Pool, digests: np.ndarray | None) -> None:
        self.pool, self._digests = pool, digests

    def digests(self, ledger: Ledger) -> np.ndarray:
        if self._digests is None:
            self._digests = ledger.digests(self.pool)
        return self._digests


class Ledger:
    """Digests of the items each origin may hold."""

    def __init__(self, real: Pool) -> None:
        self.key = np.frombuffer(os.urandom(8 * KEY_WORDS), dtype=np.uint64)
        self.real = real
        self.replicas = real.replicas
        self._salt = np.frombuffer(os.urandom(8 * self.replicas), dtype=np.uint64)
        self._kept: dict[int, list[_Part]] = {}
        self._transient: dict[int, list[_Part]] = {}
        self._sorted: dict[int, np.ndarray] = {}
        self._real_fingerprint = None if real.is_sealed else self._fingerprint(real)
        self.add(REAL, real, keep=True)

    def digests(self, pool: Pool) -> np.ndarray:
        return pool.row_digests(self.key)

    @staticmethod
    def _fingerprint(pool: Pool) -> bytes:
        """BLAKE2b of every array's bytes: whether the content changed (no key needed, nothing to aim at)."""
        digest = hashlib.blake2b(digest_size=32)
        for array in (*(pool[k] for k in sorted(pool.keys)), pool.origin, pool.weight):
            if array is not None:
                digest.update(np.ascontiguousarray(array).data)
        return digest.digest()

    def add(self, origin: int, pool: Pool, keep: bool = False, digests: np.ndarray | None = None) -> None:
        """Items of ``pool`` become legitimate items of ``origin``: for the rest of the run (``keep``) or of
        this generation. ``digests``: the pool's digests if already computed."""
        if len(pool):
            (self._kept if keep else self._transient).setdefault(origin, []).append(_Part(pool, digests))
            self._sorted.pop(origin, None)

    def end_generation(self) -> None:
        """Forget what only this generation could use (raw samples, corrected items, fresh real data)."""
        for origin in self._transient:
            self._sorted.pop(origin, None)
        self._transient.clear()

    def _parts(self, origin: int) -> list[np.ndarray]:
        return [part.digests(self) for part in self._kept.get(origin, []) + self._transient.get(origin, [])]

    def _salted(self, digests: np.ndarray) -> np.ndarray:
        if self.replicas == 1:
            return digests
        with np.errstate(over="ignore"):
            return (digests + self._salt).ravel()

    def _lookup(self, origin: int) -> np.ndarray:
        if origin not in self._sorted:
            parts = self._parts(origin)
            flat = [self._salted(p) for p in parts]
            self._sorted[origin] = np.sort(np.concatenate(flat)) if flat else np.zeros(0, dtype=np.uint64)
        return self._sorted[origin]

    def check(self, pool: Pool, who: str) -> np.ndarray:
        """Raise :class:`PluginError` naming ``who`` if an item of ``pool`` is not an item of its origin;
        returns the pool's digests."""
        digests = self.digests(pool)
        for origin in np.unique(pool.origin):
            rows = np.flatnonzero(pool.origin == origin)
            block = digests[rows]
            if any(part.shape == block.shape and np.array_equal(part, block) for part in self._parts(int(origin))):
                continue
            allowed = self._lookup(int(origin))
            query = self._salted(block)
            at = np.minimum(np.searchsorted(allowed, query), max(len(allowed) - 1, 0))
            found = (allowed[at] == query) if len(allowed) else np.zeros(query.shape, dtype=bool)
            if self.replicas > 1:
                found = found.reshape(len(rows), self.replicas).all(axis=1)
            bad = rows[~found]
            if len(bad):
                label = "real" if origin == REAL else f"synthetic (generation {int(origin)})"
                raise PluginError(
                    f"{who} returned {len(bad)} item(s) marked {label} that are not {label} items the loop produced "
                    f"(first at position {int(bad[0])}); strategies may select, weight and reorder items, never invent them"
                )
        return digests

    def check_real_unchanged(self, who: str) -> None:
        """Raise :class:`PluginError` if the real pool's content changed (a plugin wrote into it)."""
        if self._real_fingerprint is not None and self._fingerprint(self.real) != self._real_fingerprint:
            raise PluginError(f"{who} changed the real pool in place; strategies must not modify the data they are given")
