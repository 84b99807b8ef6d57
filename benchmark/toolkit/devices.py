"""Where a neural task computes: one reading of the ``accelerator`` config key for every task.

The Lightning Trainer trains on ``accelerator``; evaluation and sampling run on the torch
device this module resolves from the same key, so a task never trains on one device and
samples on another.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from collapselab.errors import ConfigError

#: The accelerator names Lightning knows (the type of every neural task's ``accelerator`` key).
Accelerator = Literal["cpu", "gpu", "cuda", "mps", "auto"]
ACCELERATORS: tuple[str, ...] = get_args(Accelerator)


def check_accelerator(value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an accelerator name Lightning knows."""
    if value not in ACCELERATORS:
        raise ConfigError(f"accelerator must be one of {ACCELERATORS}, got {value!r}")


def resolve_device(accelerator: str) -> Any:
    """The ``torch.device`` for ``accelerator``: ``auto`` takes CUDA, then MPS, then the CPU;
    naming a device that is not there is a :class:`ConfigError`."""
    import torch

    check_accelerator(accelerator)
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if accelerator in ("mps", "auto") and torch.backends.mps.is_available():
        return torch.device("mps")
    if accelerator not in ("auto", "cpu"):
        raise ConfigError(f"accelerator={accelerator} but no such device is available")
    return torch.device("cpu")
