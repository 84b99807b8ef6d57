"""Seeds for libraries that take an integer or a global generator (torch, RDKit), derived from
the NumPy stream the loop hands a task for each (generation, phase)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np


def derive_int(rng: np.random.Generator, high: int = 2**31 - 1) -> int:
    """A positive integer seed for libraries that take one (RDKit, torch); never 0."""
    return int(rng.integers(1, high))


@contextlib.contextmanager
def torch_seed(rng: np.random.Generator) -> Iterator[object]:
    """Seed torch's global RNG from ``rng`` for the duration of the block and restore it after.

    Yields a ``torch.Generator`` seeded from the same stream for explicit use.
    """
    import torch

    seed = derive_int(rng)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed + 1)
        yield generator
