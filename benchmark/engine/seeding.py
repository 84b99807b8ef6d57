"""Seed streams: one root seed per run, an independent stream per (generation, phase).

Streams come from NumPy's ``SeedSequence`` with a spawn key, so generation 5's sampler gets
the same random numbers whether the run started at generation 0 or resumed at 5. Tasks that
use PyTorch derive a ``torch.Generator`` (or seed the global RNG for layers like dropout)
from the stream they are given, with :func:`torch_seed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

PHASES = ("fit", "sample", "curate", "strategy", "evaluate", "artifacts", "fresh_real")


def stream(root_seed: int, generation: int, phase: str, index: int = 0) -> np.random.Generator:
    """The ``index``-th random stream of ``phase`` at ``generation`` for the run seeded ``root_seed``."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; phases are {PHASES}")
    key = (int(generation), PHASES.index(phase), int(index))
    sequence = np.random.SeedSequence(entropy=int(root_seed), spawn_key=key)
    return np.random.Generator(np.random.PCG64(sequence))


def derive_int(rng: np.random.Generator, high: int = 2**31 - 1) -> int:
    """A positive integer seed for libraries that take one (RDKit, torch); never 0."""
    return int(rng.integers(1, high))


@contextlib.contextmanager
def torch_seed(rng: np.random.Generator) -> Iterator["object"]:
    """Seed torch's global RNG from ``rng`` for the duration of the block and restore it after.

    Yields a ``torch.Generator`` seeded from the same stream for explicit use.
    """
    import torch

    seed = derive_int(rng)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed + 1)
        yield generator
