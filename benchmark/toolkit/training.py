"""Shared PyTorch Lightning training for the neural tasks.

One place configures the Trainer the same way for every task: CPU by default (any Lightning
accelerator, GPUs and multi-GPU included, through ``accelerator``/``devices``), no
checkpoints, loggers or progress bars of its own (the loop reports progress), seeded from
the generation's stream, and a guard that stops training with a clear error the moment the
loss becomes NaN or infinite. Returns the compute used: examples processed and optimiser
steps.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from collapselab.contracts.task import Compute
from collapselab.errors import TaskError
from collapselab.toolkit.seeds import derive_int, torch_seed

# Lightning sets its loggers to INFO on import; the loop reports progress instead.
for _name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)


class DivergenceGuard(pl.Callback):
    """Raises :class:`TaskError` as soon as a training loss is not finite; counts examples."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self.examples = 0

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            raise TaskError(
                f"task {self.task_name!r}: training diverged (loss {float(loss)} at step {trainer.global_step}); "
                "the run stops here and earlier generations are kept"
            )
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.examples += int(len(first))


def make_loader(
    tensors: Sequence[torch.Tensor], batch_size: int, rng: np.random.Generator, shuffle: bool = True
) -> DataLoader:
    """A DataLoader over ``tensors`` (same first dimension), shuffled by a generator seeded from ``rng``."""
    generator = torch.Generator().manual_seed(derive_int(rng))
    return DataLoader(
        TensorDataset(*tensors),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=False,
    )


M = TypeVar("M", bound=pl.LightningModule)


def train(
    build: Callable[[], M],
    loader: DataLoader,
    rng: np.random.Generator,
    task_name: str,
    epochs: int | None = None,
    max_steps: int = -1,
    accelerator: str = "cpu",
    devices: int | str = 1,
    gradient_clip_val: float | None = None,
) -> tuple[M, Compute]:
    """Build a module with ``build()`` and fit it on ``loader``, both seeded from ``rng``.

    Returns the trained module (on the CPU) and the examples and optimiser steps it took.
    """
    guard = DivergenceGuard(task_name)
    with warnings.catch_warnings(), torch_seed(rng):
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
        module = build()
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            max_epochs=epochs if epochs is not None else -1,
            max_steps=max_steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            gradient_clip_val=gradient_clip_val,
            callbacks=[guard],
        )
        trainer.fit(module, train_dataloaders=loader)
    module.cpu()
    return module, Compute(examples=guard.examples, steps=int(trainer.global_step))


def save_state(module: torch.nn.Module, path: Path) -> None:
    """Write a module's parameters and buffers (``torch.save`` of its ``state_dict``)."""
    torch.save(module.state_dict(), path)


def load_state(module: M, path: Path) -> M:
    """Load parameters written by :func:`save_state` into ``module`` (weights only, no pickle code)."""
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module.eval()
