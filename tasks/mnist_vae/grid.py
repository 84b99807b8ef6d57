"""Per-generation PNG of samples: the binary samples the next generation trains on, beside the
decoder means for the same latent draws (what the model 'intends', without pixel noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """Images (n, h, w) -> one (rows*(h+1)+1, columns*(w+1)+1) mosaic with 1-pixel grey gutters."""
    n, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1), 0.5)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = image
    return canvas


def write_sample_grid(path: Path, samples: np.ndarray, means: np.ndarray, title: str, columns: int = 10) -> None:
    """Save ``samples`` and ``means`` (n, 28, 28) side by side as one PNG titled ``title``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 5.4), dpi=100, layout="constrained")
    left, right = figure.subplots(1, 2)
    for ax, images, label in ((left, samples, "Bernoulli samples (training data of the next generation)"),
                              (right, means, "decoder means p(x|z), same z")):
        ax.imshow(tile(np.asarray(images, dtype=np.float64), columns), cmap="gray", vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    figure.suptitle(title, fontsize=11)
    figure.savefig(path)
