"""Provenance checks: every item a strategy returns is an item the loop gave it.

The loop keeps a ledger of keyed item digests (:meth:`collapselab.Pool.row_digests`) per
origin: the real pool and the fresh real data drawn through the context (origin -1), and each
generation's samples, including what the task's expert made of them (origin g). After every
strategy hook it checks that each returned item's digest is in the ledger of the origin the
item claims, so a strategy cannot return made-up items labelled as real (or as samples), and
that the real pool still has its digest, so a strategy cannot have edited it. For a pool with
replicas every (item, replica) is checked in its own replica.
"""

from __future__ import annotations

import os

import numpy as np

from collapselab.contracts.pool import REAL, Pool
from collapselab.errors import PluginError

KEY_WORDS = 1 << 16


class Ledger:
    """Digests of the items each origin may hold."""

    def __init__(self, real: Pool) -> None:
        self.key = np.frombuffer(os.urandom(8 * KEY_WORDS), dtype=np.uint64)
        self.real = real
        self.replicas = real.replicas
        self._known: dict[int, list[np.ndarray]] = {}
        self._real_digest = self._whole(real)
        self.add(REAL, real)

    def _digests(self, pool: Pool) -> np.ndarray:
        return pool.row_digests(self.key)

    def _whole(self, pool: Pool) -> tuple[int, int]:
        digests = self._digests(pool)
        with np.errstate(over="ignore"):
            return len(pool), int(digests.sum(dtype=np.uint64))

    def add(self, origin: int, pool: Pool) -> None:
        """Items of ``pool`` become legitimate items of ``origin``."""
        if len(pool):
            self._known.setdefault(origin, []).append(self._digests(pool))

    def _allowed(self, origin: int) -> np.ndarray:
        parts = self._known.get(origin, [])
        if not parts:
            return np.zeros((0,) if self.replicas == 1 else (0, self.replicas), dtype=np.uint64)
        return np.concatenate(parts)

    def check(self, pool: Pool, who: str) -> None:
        """Raise :class:`PluginError` naming ``who`` if an item of ``pool`` is not an item of its origin."""
        digests = self._digests(pool)
        for origin in np.unique(pool.origin):
            rows = np.flatnonzero(pool.origin == origin)
            allowed = self._allowed(int(origin))
            if self.replicas == 1:
                bad = rows[~np.isin(digests[rows], allowed)]
            else:
                found = np.stack([np.isin(digests[rows, r], allowed[:, r]) for r in range(self.replicas)], axis=1)
                bad = rows[~found.all(axis=1)]
            if len(bad):
                label = "real" if origin == REAL else f"synthetic (generation {int(origin)})"
                raise PluginError(
                    f"{who} returned {len(bad)} item(s) marked {label} that are not {label} items the loop produced "
                    f"(first at position {int(bad[0])}); strategies may select, weight and reorder items, never invent them"
                )

    def check_real_unchanged(self, who: str) -> None:
        """Raise :class:`PluginError` if the real pool's content changed (a plugin wrote into it)."""
        if self._whole(self.real) != self._real_digest:
            raise PluginError(f"{who} changed the real pool in place; strategies must not modify the data they are given")
