"""Seed streams: one root seed per run, an independent stream per (generation, phase).

Streams come from NumPy's ``SeedSequence`` with a spawn key, so generation 5's sampler gets
the same random numbers whether the run started at generation 0 or resumed at 5. Tasks that
use PyTorch derive a ``torch.Generator`` from the stream they are given with
:func:`collapselab.toolkit.seeds.torch_seed`.
"""

from __future__ import annotations

import numpy as np

# new phases go at the end: a phase's index is part of its streams' keys
PHASES = ("fit", "sample", "curate", "strategy", "evaluate", "artifacts", "fresh_real", "hooks", "data", "plugin_globals")


def stream(root_seed: int, generation: int, phase: str, index: int = 0) -> np.random.Generator:
    """The ``index``-th random stream of ``phase`` at ``generation`` for the run seeded ``root_seed``."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; phases are {PHASES}")
    key = (int(generation), PHASES.index(phase), int(index))
    sequence = np.random.SeedSequence(entropy=int(root_seed), spawn_key=key)
    return np.random.Generator(np.random.PCG64(sequence))
