"""Train / validation / reserve / test splits: disjoint index sets over one population, fingerprinted.

A task with held-out data splits the indices of its items (digits, molecules, documents, chunks)
into named parts: ``train`` (the real pool), ``validation`` (model selection: preset budgets,
learning rates, sizes), ``reserve`` (fresh real data for oracle strategies) and ``test`` (read by
``evaluate`` only, for the numbers the leaderboard publishes). :func:`carve` cuts consecutive runs
of an ordering (a seeded or stratified permutation) into parts of the requested sizes;
:class:`IndexSplit` checks that its parts partition the population (disjoint, and together every
index exactly once, the leftover named ``unused`` where nothing takes it) and fingerprints them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from collapselab.errors import ConfigError, TaskError

#: The part holding the leftover of a population no named part takes.
UNUSED = "unused"


def sha256_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over the dtype, shape and bytes of ``arrays`` (content fingerprints)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class IndexSplit:
    """Named, disjoint index sets that together hold every index of ``range(total)`` exactly once.

    Each part keeps the order it was given in (a task may train on its pool in that order); the
    constructor refuses overlapping parts, indices outside the population and a population not
    covered, naming the parts at fault.
    """

    total: int
    parts: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        frozen = {name: np.asarray(idx, dtype=np.int64).copy() for name, idx in self.parts.items()}
        for array in frozen.values():
            array.setflags(write=False)
        object.__setattr__(self, "parts", MappingProxyType(frozen))
        owner = np.full(self.total, -1, dtype=np.int64)
        for k, (name, idx) in enumerate(frozen.items()):
            if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= self.total)):
                raise TaskError(f"split part {name!r} holds indices outside range({self.total})")
            taken = owner[idx]
            clash = taken[taken >= 0]
            if len(clash) or len(np.unique(idx)) != len(idx):
                other = list(frozen)[int(clash[0])] if len(clash) else name
                raise TaskError(f"split parts {other!r} and {name!r} share items; the parts of a split must be disjoint")
            owner[idx] = k
        missing = int(np.sum(owner < 0))
        if missing:
            raise TaskError(f"split parts {sorted(frozen)} leave {missing} of {self.total} items in no part; "
                            f"name the leftover {UNUSED!r}")

    def __getitem__(self, name: str) -> np.ndarray:
        return self.parts[name]

    @property
    def train(self) -> np.ndarray:
        return self.parts["train"]

    @property
    def validation(self) -> np.ndarray:
        return self.parts["validation"]

    @property
    def reserve(self) -> np.ndarray:
        return self.parts["reserve"]

    @property
    def test(self) -> np.ndarray:
        return self.parts["test"]

    def sizes(self) -> dict[str, int]:
        """Part name -> number of items."""
        return {name: len(idx) for name, idx in self.parts.items()}

    def sorted(self) -> IndexSplit:
        """The same split with every part in increasing index order."""
        return IndexSplit(self.total, {name: np.sort(idx) for name, idx in self.parts.items()})

    def sha256(self) -> str:
        """SHA-256 of the population size and each part's name and indices, in order."""
        digest = hashlib.sha256(f"{self.total}".encode())
        for name in sorted(self.parts):
            digest.update(f"|{name}:".encode())
            digest.update(self.parts[name].astype("<i8").tobytes())
        return digest.hexdigest()


def carve(order: np.ndarray | int, sizes: Sequence[tuple[str, int]], rest: str = UNUSED,
          population: str = "the population") -> IndexSplit:
    """Consecutive runs of ``order`` (a permutation of ``range(n)``, or ``n`` for the identity) as the parts
    ``sizes`` names, in that order; what is left goes to ``rest``.

    Raises :class:`ConfigError` naming ``population`` and the sizes when they ask for more items than it holds.
    """
    order = np.arange(order) if isinstance(order, int | np.integer) else np.asarray(order, dtype=np.int64)
    total = len(order)
    if order.ndim != 1 or not np.array_equal(np.sort(order), np.arange(total)):
        raise TaskError(f"a split needs an ordering that is a permutation of range({total})")
    names = [name for name, _ in sizes] + [rest]
    if len(set(names)) != len(names):
        raise TaskError(f"split part names must differ, got {names}")
    if any(n < 0 for _, n in sizes):
        raise ConfigError(f"split sizes must be >= 0, got {dict(sizes)}")
    asked = sum(n for _, n in sizes)
    if asked > total:
        wanted = ", ".join(f"{name} {n}" for name, n in sizes)
        raise ConfigError(f"{population} holds {total} items; the split asks for {asked} ({wanted})")
    parts, start = {}, 0
    for name, n in sizes:
        parts[name] = order[start : start + n]
        start += n
    parts[rest] = order[start:]
    return IndexSplit(total, parts)
