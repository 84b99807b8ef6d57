"""The Task contract: data, model, sampler and evaluator of one modality.

A task is versioned (``name``, ``version``) and configured by a named preset (``smoke``,
``cpu``, ``paper``) plus ``--set key=value`` overrides. It is the only door to its held-out
test data: :meth:`Task.evaluate` reads it, nothing else does, so no strategy can see it
(the single-evaluator design of the Open Graph Benchmark, Hu et al. 2020).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from collapselab.contracts.params import coerce
from collapselab.contracts.pool import Pool
from collapselab.errors import ConfigError, ParameterError

PRESETS = ("smoke", "cpu", "paper")
REQUIRED_PRESETS = ("smoke", "cpu")
#: The preset the leaderboard ranks (every task has it; entries run it unchanged).
LEADERBOARD_PRESET = "cpu"



@dataclass(frozen=True)
class TaskMetadata:
    """Typed description of a task, shown by ``collapselab list`` and on the leaderboard."""

    modality: str
    description: str
    citation: str
    loss_unit: str
    secondary_metrics: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Compute:
    """What one fit cost: examples processed (with repetition over epochs) and optimiser steps."""

    examples: int
    steps: int

    def as_dict(self) -> dict[str, int]:
        return {"examples": int(self.examples), "steps": int(self.steps)}


@dataclass(frozen=True)
class FitResult:
    model: Any
    compute: Compute


class Task(abc.ABC):
    """One modality of the benchmark. Subclass, fill the class attributes, implement the methods.

    Class attributes:
        name, version: identify the task; results of different versions never mix.
        metadata: a :class:`TaskMetadata`.
        presets: preset name -> full configuration dict. Every preset has the same keys,
            including ``generations`` (the default number of synthetic generations).
        fit_options: option name -> default; the options a strategy may set per generation.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    metadata: ClassVar[TaskMetadata]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]]
    fit_options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, preset: str = "cpu", overrides: Mapping[str, Any] | None = None) -> None:
        self.preset = preset
        self.config = self.resolve_config(preset, overrides or {})
        self.check_config(self.config)

    # ----------------------------------------------------------- configuration
    @classmethod
    def resolve_config(cls, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The preset's configuration with ``overrides`` applied; unknown keys are errors."""
        if preset not in cls.presets:
            raise ConfigError(f"task {cls.name!r} has no preset {preset!r}; choose one of {sorted(cls.presets)}")
        config = dict(cls.presets[preset])
        for key, value in overrides.items():
            if key not in config:
                raise ConfigError(f"task {cls.name!r} has no config key {key!r}; valid keys: {sorted(config)}")
            try:
                config[key] = coerce(value, config[key])
            except ParameterError as exc:
                raise ConfigError(f"task {cls.name!r}, config key {key!r}: {exc}") from None
        return config

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigError` for invalid values (override to add task rules)."""

    @property
    def default_generations(self) -> int:
        return int(self.config["generations"])

    def describe(self) -> dict[str, Any]:
        """What a strategy may know of the task: identity, configuration and options (no data)."""
        return {
            "name": self.name,
            "version": self.version,
            "preset": self.preset,
            "config": dict(self.config),
            "fit_options": dict(self.fit_options),
        }

    def data_fingerprint(self) -> dict[str, Any]:
        """Hashes that identify the data a run used (recorded in the manifest)."""
        return {}

    def device(self) -> str:
        """Where the task computes (e.g. ``cpu``, ``cuda:0``), recorded in the manifest."""
        return "cpu"

    # ------------------------------------------------------------------ data
    @abc.abstractmethod
    def real_pool(self) -> Pool:
        """The real training data of the preset (origin -1)."""

    def synthetic_size(self) -> int:
        """How many samples each generation draws by default (the real pool's size)."""
        return len(self.real_pool())

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        """``n`` new real examples disjoint from :meth:`real_pool` (oracle strategies only)."""
        raise NotImplementedError(f"task {self.name!r} has no reserve of fresh real data")

    # ----------------------------------------------------------------- model
    @abc.abstractmethod
    def fit(self, pool: Pool, options: Mapping[str, Any], rng: np.random.Generator) -> FitResult:
        """Train a fresh model on ``pool`` with fit ``options``."""

    @abc.abstractmethod
    def sample(self, model: Any, n: int, rng: np.random.Generator) -> Pool:
        """``n`` samples from ``model`` with the task's standard sampler (origin set by the loop)."""

    @abc.abstractmethod
    def evaluate(self, model: Any) -> dict[str, float]:
        """Metrics on held-out REAL data; ``loss`` (lower is better) is the primary metric."""

    def score(self, model: Any, pool: Pool) -> np.ndarray:
        """Per-item quality of ``pool`` under ``model`` (higher is better), for curation."""
        raise NotImplementedError(f"task {self.name!r} defines no per-item score")

    def theory(self, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Closed-form metrics for the latest generation, where the task has them.

        ``records`` are the generation records so far, the latest (without its theory
        metrics yet) last. Returns extra metrics (e.g. ``theory_loss``) or ``{}``.
        """
        return {}

    def write_artifacts(self, model: Any, generation: int, directory: Path, rng: np.random.Generator) -> list[str]:
        """Save human-readable outputs (sample grids, text, SDF) and return their file names."""
        return []

    @abc.abstractmethod
    def save_model(self, model: Any, path: Path) -> None:
        """Write ``model`` to ``path`` (the loop makes the write atomic)."""

    @abc.abstractmethod
    def load_model(self, path: Path) -> Any:
        """Read a model written by :meth:`save_model`."""
