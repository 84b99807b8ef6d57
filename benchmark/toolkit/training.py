"""Shared PyTorch Lightning training for the neural tasks, under a fixed optimiser-step budget.

Every fit spends exactly the preset's budget of optimiser steps, drawing minibatches from the
pool it is given (:func:`budget_loader`), whatever the pool's size: a strategy changes *what*
the model trains on, not how long (the matched-compute protocol of CollapseLab's standard
track; Kazdan et al. 2024, arXiv 2410.16713, compare accumulation at fixed and growing compute).
One place configures the Trainer the same way for every task: CPU by default (any Lightning
accelerator through ``accelerator``/``devices``), no checkpoints, loggers or progress bars of
its own, seeded from the generation's stream, and a guard that stops training with a clear
error the moment the loss becomes NaN or infinite.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, TensorDataset

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


class BudgetSampler(torch.utils.data.Sampler[int]):
    """Exactly ``total`` item indices: successive random permutations of the items with positive
    weight, cut at ``total``. Every item is seen equally often (to within one pass), whatever the
    pool's size: a pool smaller than the budget is cycled, a larger one is covered in part."""

    def __init__(self, items: np.ndarray, total: int, generator: torch.Generator) -> None:
        self.items = torch.as_tensor(items, dtype=torch.long)
        self.total = int(total)
        self.generator = generator

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[int]:
        drawn = 0
        while drawn < self.total:
            order = self.items[torch.randperm(len(self.items), generator=self.generator)][: self.total - drawn]
            drawn += len(order)
            yield from order.tolist()


def normalised_weights(weight: np.ndarray | None, n: int, task_name: str) -> np.ndarray:
    """Item weights scaled to mean 1 over the items with positive weight (all ones when unweighted)."""
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    if not (w > 0).any():
        raise TaskError(f"task {task_name!r}: every item of the training pool has weight 0")
    return w / w[w > 0].mean()


def budget_loader(
    tensors: Sequence[torch.Tensor], weight: np.ndarray, batch_size: int, steps: int, rng: np.random.Generator
) -> DataLoader:
    """``steps`` minibatches of ``batch_size`` items drawn from ``tensors`` by :class:`BudgetSampler`
    (items of weight 0 are never drawn); each batch ends with the items' weights (float32)."""
    generator = torch.Generator().manual_seed(derive_int(rng))
    items = np.flatnonzero(np.asarray(weight) > 0)
    dataset = TensorDataset(*tensors, torch.as_tensor(weight, dtype=torch.float32))
    batches = BatchSampler(BudgetSampler(items, batch_size * steps, generator), batch_size, drop_last=False)
    # batch_size=None: each sampled list of indices fetches a whole batch by one tensor indexing
    return DataLoader(dataset, sampler=batches, batch_size=None)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: int, floor: float
) -> dict[str, Any]:
    """Lightning's optimiser config with a per-step schedule: linear warm-up over ``warmup`` steps,
    then cosine decay to ``floor`` times the learning rate at ``total_steps`` (Loshchilov & Hutter
    2017, "SGDR"; the schedule of nanoGPT and Hoffmann et al. 2022)."""
    warmup = max(1, int(warmup))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


M = TypeVar("M", bound=pl.LightningModule)


def train(
    build: Callable[[], M],
    loader: DataLoader,
    rng: np.random.Generator,
    task_name: str,
    steps: int,
    accelerator: str = "cpu",
    devices: int | str = 1,
    gradient_clip_val: float | None = None,
) -> tuple[M, Compute]:
    """Build a module with ``build()`` and fit it for exactly ``steps`` optimiser steps on ``loader``
    (one pass over a :func:`budget_loader`), both seeded from ``rng``.

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
            max_epochs=1,
            max_steps=steps,
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
    if int(trainer.global_step) != steps:
        raise TaskError(f"task {task_name!r}: training stopped after {trainer.global_step} of {steps} optimiser steps")
    return module, Compute(examples=guard.examples, steps=int(trainer.global_step))


def save_state(module: torch.nn.Module, path: Path) -> None:
    """Write a module's parameters and buffers (``torch.save`` of its ``state_dict``). Through a file
    object, so that the archive's inner folder is torch's fixed ``archive``, not the file's name:
    the same weights give the same bytes (and the same SHA-256 in the records) whatever the path."""
    with open(path, "wb") as file:
        torch.save(module.state_dict(), file)


def load_state(module: M, path: Path) -> M:
    """Load parameters written by :func:`save_state` into ``module`` (weights only, no pickle code)."""
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module.eval()
