"""Losses on a rare stratum of test items against the rest (the tails of the collapse profile)."""

from __future__ import annotations

import numpy as np


def stratum_losses(losses: np.ndarray, groups: np.ndarray, tail: np.ndarray) -> dict[str, float]:
    """``tail_loss`` and ``common_loss``: the mean of per-item ``losses`` over items whose group is in
    ``tail`` and over the others (each stratum must hold at least one item)."""
    rare = np.isin(np.asarray(groups), np.asarray(tail))
    if rare.all() or not rare.any():
        raise ValueError("both strata need at least one item")
    values = np.asarray(losses, dtype=np.float64)
    return {"tail_loss": float(values[rare].mean()), "common_loss": float(values[~rare].mean())}
