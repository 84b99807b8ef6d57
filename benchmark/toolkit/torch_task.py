"""The shared base of the neural tasks: device, fitting under the step budget, save and load.

A neural task subclasses :class:`TorchTask` and supplies three things: :meth:`build_model`
(a fresh LightningModule whose learning-rate schedule spans ``total_steps``),
:meth:`training_tensors` (the pool's payload as tensors, in the order its ``training_step``
unpacks them, before the item weights that :func:`~collapselab.toolkit.training.budget_loader`
appends) and the usual sampler and evaluator. Everything else is shared: the ``accelerator``,
``steps`` and ``batch_size`` config keys, weights normalised to mean 1, exactly ``steps``
optimiser steps per fit, and weights-only state-dict files (no pickled code).

Torch and Lightning are imported inside the methods, so that listing tasks stays fast and
works where the task's extra is not installed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from collapselab.contracts.pool import Pool
from collapselab.contracts.task import FitResult, Task
from collapselab.contracts.task_config import TaskConfig
from collapselab.errors import TaskError
from collapselab.toolkit.devices import Accelerator, resolve_device

#: Gradient-norm clipping applied by every neural fit.
GRADIENT_CLIP = 1.0


class TorchConfig(TaskConfig):
    """The keys every neural task has: where it trains, and the budget of one fit."""

    accelerator: Accelerator = Field(description="Lightning's accelerator")
    steps: int = Field(ge=1, description="optimiser steps of one standard fit")
    batch_size: int = Field(ge=1)


class TorchTask(Task):
    """A task whose model is a PyTorch Lightning module trained by gradient steps."""

    Config: ClassVar[type[TaskConfig]] = TorchConfig
    settings: TorchConfig

    # --------------------------------------------------------------- devices
    @cached_property
    def torch_device(self) -> Any:
        """The ``torch.device`` the task samples and evaluates on (the Trainer trains on the same)."""
        return resolve_device(self.settings.accelerator)

    def device(self) -> str:
        return str(self.torch_device)

    # ----------------------------------------------------------------- model
    @abc.abstractmethod
    def build_model(self, total_steps: int, options: Mapping[str, Any]) -> Any:
        """A freshly initialised LightningModule whose schedule runs over ``total_steps`` steps,
        for fit ``options`` (all of the task's fit options)."""

    @abc.abstractmethod
    def training_tensors(self, pool: Pool) -> list[Any]:
        """The pool's payload as tensors (first axis: items) for ``training_step``."""

    def fit(self, pool: Pool, options: Mapping[str, Any], rng: np.random.Generator) -> FitResult:
        """A fresh model trained for exactly ``options["steps"]`` optimiser steps on minibatches of
        ``pool`` (item weights, normalised to mean 1, scale each item's loss)."""
        from collapselab.toolkit.training import budget_loader, normalised_weights, train

        steps = int(options["steps"])
        if steps < 1:
            raise TaskError(f"task {self.name!r}: fit option steps must be >= 1, got {steps}")
        weight = normalised_weights(pool.weight, len(pool), self.name)
        loader = budget_loader(self.training_tensors(pool), weight, self.settings.batch_size, steps, rng)
        model, compute = train(lambda: self.build_model(steps, options), loader, rng, self.name, steps=steps,
                               accelerator=self.settings.accelerator, gradient_clip_val=GRADIENT_CLIP)
        return FitResult(model.eval(), compute)

    def save_model(self, model: Any, path: Path) -> None:
        from collapselab.toolkit.training import save_state

        save_state(model, path)

    def load_model(self, path: Path) -> Any:
        from collapselab.toolkit.training import load_state

        return load_state(self.build_model(1, self.fit_options), path)
