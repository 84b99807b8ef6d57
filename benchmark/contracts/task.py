"""The Task contract: data, model, sampler and evaluator of one modality.

A task is versioned (``name``, ``version``) and configured by a named preset (``smoke``,
``cpu``, ``paper``) plus ``--set key=value`` overrides. It is the only door to its held-out
test data: :meth:`Task.evaluate` reads it, nothing else does, so no strategy can see it
(the single-evaluator design of the Open Graph Benchmark, Hu et al. 2020). Model selection
reads :meth:`Task.validate` (the validation split) instead, so no preset is tuned on test data.

What a strategy may know of a task is its :class:`TaskDescription` (identity, configuration,
the fit and sampling options it may set, the optional hooks the task offers). The optional
hooks give strategies the task-side tools the published mitigations need without reaching
into the task: a verifier of tunable quality (:meth:`Task.verify`, Feng et al. 2024), an
expert that moves samples toward the data manifold (:meth:`Task.correct`, Gillman et al.
2024), a reward (:meth:`Task.reward`, Ferbach et al. 2024), per-item features for a
discriminator (:meth:`Task.features`), and a reserve of fresh real data
(:meth:`Task.fresh_real_pool`, oracle strategies only).

The contract is checked when a task class is created, so a mistake fails at import with one
clear message: metadata present, the ``smoke`` and ``cpu`` presets present, every preset with
the same keys, and every preset valid for the task's typed ``Config``
(:mod:`collapselab.contracts.task_config`).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from collapselab.contracts import memory
from collapselab.contracts.params import coerce
from collapselab.contracts.pool import Pool
from collapselab.contracts.task_config import TaskConfig, validated
from collapselab.errors import ConfigError, ParameterError, TaskError

PRESETS = ("smoke", "cpu", "paper")
REQUIRED_PRESETS = ("smoke", "cpu")
#: The preset the leaderboard ranks (every task has it; entries run it unchanged).
LEADERBOARD_PRESET = "cpu"
#: Seeds the shipped baselines run at the leaderboard preset, unless a task asks for more
#: (:attr:`Task.leaderboard_seeds`; cheap tasks publish many seeds).
LEADERBOARD_SEEDS = 3
#: Optional task-side hooks a strategy may use (see :class:`TaskDescription.hooks`).
HOOKS = ("verify", "correct", "reward", "features", "fresh_real_pool")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class TaskMetadata:
    """Typed description of a task, shown by ``collapselab list`` / ``show`` and on the leaderboard.

    ``requires`` names the modules the task needs beyond the core install, ``extra`` the
    pip extra that installs them (``pip install "collapselab[extra]"``).
    """

    modality: str
    description: str
    citation: str
    loss_unit: str
    secondary_metrics: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    extra: str | None = None


@dataclass(frozen=True)
class Compute:
    """What one fit cost: examples processed (with repetition) and optimiser steps."""

    examples: int
    steps: int

    def as_dict(self) -> dict[str, int]:
        return {"examples": int(self.examples), "steps": int(self.steps)}


@dataclass(frozen=True)
class FitResult:
    model: Any
    compute: Compute


@dataclass(frozen=True)
class TaskDescription:
    """What a strategy may know of a task: never its data or its models.

    ``step_budget`` is the optimiser-step budget of one standard fit (``None`` for a task
    fitted in closed form), ``example_budget`` the examples one standard fit processes (steps x
    batch size, or a closed-form task's examples per fit; ``None`` for a task without a budget);
    ``hooks`` names the optional task hooks available (:data:`HOOKS`). ``resolved_config`` is
    ``config`` with the task's documented sentinels replaced by the values they stand for
    (:meth:`Task.resolved_config`), so that a strategy reads e.g. a sample size, never re-derives it.
    """

    name: str
    version: str
    preset: str
    config: Mapping[str, Any]
    fit_options: Mapping[str, Any]
    sampling_options: Mapping[str, Any]
    hooks: frozenset[str]
    step_budget: int | None
    example_budget: int | None = None
    resolved_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _check_class(cls: type[Task]) -> None:
    """The class-level contract; raises ``TypeError`` naming the task class and the problem."""
    where = f"task class {cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls.__dict__.get("name"), str) or not _NAME.fullmatch(cls.name):
        raise TypeError(f"{where}: `name` must be a lowercase identifier such as 'my_task'")
    if not isinstance(getattr(cls, "version", None), str) or not cls.version:
        raise TypeError(f"{where}: `version` must be a non-empty string (bump it whenever results change)")
    if not isinstance(getattr(cls, "metadata", None), TaskMetadata):
        raise TypeError(f"{where}: `metadata` must be a TaskMetadata")
    presets = getattr(cls, "presets", None)
    if not isinstance(presets, Mapping) or any(p not in presets for p in REQUIRED_PRESETS):
        raise TypeError(f"{where}: `presets` must define at least {list(REQUIRED_PRESETS)}")
    model = cls.__dict__.get("Config", getattr(cls, "Config", None))
    if not (isinstance(model, type) and issubclass(model, TaskConfig)) or model is TaskConfig:
        raise TypeError(f"{where}: `Config` must be a TaskConfig subclass with one typed field per config key")
    keys = set(presets["cpu"])
    for preset, config in presets.items():
        if set(config) != keys:
            missing, extra = sorted(keys - set(config)), sorted(set(config) - keys)
            raise TypeError(f"{where}: preset {preset!r} has other keys than 'cpu' (missing {missing}, extra {extra})")
        try:
            validated(model, config, f"preset {preset!r}")
        except ConfigError as exc:
            raise TypeError(f"{where}: {exc}") from None
        steps = config.get("steps")
        if "steps" in config and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise TypeError(f"{where}: preset {preset!r}: 'steps' (the optimiser-step budget of one fit) must be >= 1")


class Task(abc.ABC):
    """One modality of the benchmark. Subclass, fill the class attributes, implement the methods.

    Class attributes:
        name, version: identify the task; results of different versions never mix.
        metadata: a :class:`TaskMetadata`.
        Config: the typed configuration (:class:`TaskConfig` subclass): one field per key of
            the presets, with its type and bounds; ``task.settings`` is the run's, validated.
        presets: preset name -> full configuration dict. Every preset has the same keys,
            including ``generations`` (the default number of synthetic generations) and the
            compute budget of one fit: for a task trained by gradient steps ``steps`` (optimiser
            steps) and ``batch_size``; a task fitted in closed form declares its budget in
            examples per fit (:attr:`example_budget`) and offers the fit option ``examples``.
        metric_bounds: metric -> (low, high) a correct evaluation stays within (``None``: open);
            the loop and the leaderboard refuse values outside.
        seeded_data: True if the real data are drawn from the run seed (then
            :meth:`for_seed` returns a task bound to that seed).
        leaderboard_seeds: how many seeds (0, 1, ...) the shipped baselines run at the
            leaderboard preset (a cheap task asks for more, so that its intervals are tight).

    An intermediate base class (such as :class:`collapselab.toolkit.torch_task.TorchTask`)
    defines no ``name`` of its own and is not checked.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[TaskConfig]]
    metadata: ClassVar[TaskMetadata]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]]
    metric_bounds: ClassVar[Mapping[str, tuple[float | None, float | None]]] = {"loss": (0.0, None)}
    seeded_data: ClassVar[bool] = False
    leaderboard_seeds: ClassVar[int] = LEADERBOARD_SEEDS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _check_class(cls)

    def __init__(self, preset: str = "cpu", overrides: Mapping[str, Any] | None = None) -> None:
        self.preset = preset
        self.overrides = dict(overrides or {})
        self.config = self.resolve_config(preset, self.overrides)
        self.settings = validated(self.Config, self.config, f"task {self.name!r}")
        self.check_memory(self.config)
        self.run_seed: int | None = None
        self.fit_options: dict[str, Any] = dict(self.default_fit_options())
        self.sampling_options: dict[str, Any] = dict(self.default_sampling_options())

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

    def resolved_config(self) -> Mapping[str, Any]:
        """The configuration with every sentinel value replaced by what it stands for (a task whose
        config has sentinels, such as -1 for "as the real data", overrides this); default: the config."""
        return self.config

    def memory_estimate(self, config: Mapping[str, Any]) -> int | None:
        """A lower bound on the bytes a run with the valid ``config`` holds (its data, pools and models),
        or ``None`` if the task does not say. Plain arithmetic on the configuration: it runs before
        anything is allocated, so that a size this machine cannot hold is refused at once."""
        return None

    def check_memory(self, config: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigError` if :meth:`memory_estimate` exceeds what this machine can hold,
        naming the overridden keys that make it so."""
        estimate = self.memory_estimate(config)
        problem = None if estimate is None else memory.memory_problem(estimate)
        if problem is None:
            return
        preset = dict(self.presets[self.preset])

        def estimate_of(changed: Mapping[str, Any]) -> int:
            try:
                return self.memory_estimate({**preset, **changed}) or 0
            except ConfigError:  # a key valid only beside the other overrides
                return 0

        baseline = estimate_of({})
        culprits = [f"{key}={config[key]!r}" for key in self.overrides if estimate_of({key: config[key]}) > baseline]
        where = " ".join(culprits) or f"preset {self.preset!r}"
        raise ConfigError(f"task {self.name!r} with {where}: {problem}")

    def item_bytes(self) -> int:
        """A lower bound on the bytes one pool item takes; the loop refuses a sample size whose items
        would not fit in memory. Default: the real pool's item layout."""
        return memory.item_bytes(self.real_pool())

    def default_fit_options(self) -> Mapping[str, Any]:
        """Option name -> default: what a strategy may set per generation through ``fit_options``.

        A task with a step budget offers ``steps`` (default: the preset's budget); asking for
        more puts a strategy in the leaderboard's extra-compute track."""
        return {"steps": int(self.config["steps"])} if "steps" in self.config else {}

    def default_sampling_options(self) -> Mapping[str, Any]:
        """Option name -> default: the sampler's settings a strategy may set (e.g. ``temperature``)."""
        return {}

    @property
    def default_generations(self) -> int:
        return int(self.config["generations"])

    @property
    def step_budget(self) -> int | None:
        """Optimiser steps of one standard fit (``None``: fitted in closed form)."""
        return int(self.config["steps"]) if "steps" in self.config else None

    @property
    def example_budget(self) -> int | None:
        """Examples one standard fit processes, with repetition: ``steps x batch_size`` for a task
        trained by gradient steps; a closed-form task overrides it with its examples per fit.
        ``None``: the task declares no budget. Every standard fit spends exactly this, whatever the
        size of its pool; a fit that spends more is extra compute."""
        if "steps" in self.config and "batch_size" in self.config:
            return int(self.config["steps"]) * int(self.config["batch_size"])
        return None

    @classmethod
    def hooks(cls) -> frozenset[str]:
        """The optional hooks this task implements (overrides of :data:`HOOKS`)."""
        return frozenset(h for h in HOOKS if getattr(cls, h) is not getattr(Task, h))

    def describe(self) -> TaskDescription:
        """What a strategy may know of the task (read-only; never data)."""
        return TaskDescription(
            name=self.name,
            version=self.version,
            preset=self.preset,
            config=MappingProxyType(dict(self.config)),
            fit_options=MappingProxyType(dict(self.fit_options)),
            sampling_options=MappingProxyType(dict(self.sampling_options)),
            hooks=self.hooks(),
            step_budget=self.step_budget,
            example_budget=self.example_budget,
            resolved_config=MappingProxyType(dict(self.resolved_config())),
        )

    def for_seed(self, seed: int) -> Task:
        """This task for the run seeded ``seed``: itself, or (``seeded_data``) a fresh instance
        whose real data, truth and test data are drawn from that seed."""
        if not self.seeded_data:
            return self
        bound = type(self)(self.preset, self.overrides)
        bound.run_seed = int(seed)
        return bound

    def data_fingerprint(self) -> dict[str, Any]:
        """What identifies the data a run used (recorded in the manifest; part of the run identity).

        For ``seeded_data`` tasks it describes the generator, not one seed's draw, so that every
        seed of an experiment shares it."""
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

    # ----------------------------------------------------------------- model
    @abc.abstractmethod
    def fit(self, pool: Pool, options: Mapping[str, Any], rng: np.random.Generator) -> FitResult:
        """Train a fresh model on ``pool`` with fit ``options`` (all of :meth:`default_fit_options`'s keys).

        A task with a step budget spends exactly ``options["steps"]`` optimiser steps whatever
        the size of ``pool``, drawing minibatches from it and respecting its item weights; a
        closed-form task with an example budget fits on exactly ``options["examples"]`` examples
        drawn from ``pool``. The returned :class:`Compute` says what was spent."""

    @abc.abstractmethod
    def sample(self, model: Any, n: int, rng: np.random.Generator, options: Mapping[str, Any]) -> Pool:
        """``n`` samples from ``model`` with the sampler's ``options`` (origin set by the loop)."""

    @abc.abstractmethod
    def evaluate(self, model: Any) -> dict[str, float]:
        """Metrics on held-out REAL test data; ``loss`` (lower is better) is the primary metric.
        The only reader of the test split: what it returns is what the leaderboard publishes."""

    def validate(self, model: Any) -> dict[str, float]:
        """Metrics on the validation split (real data disjoint from the real pool and the test set),
        with ``loss`` as :meth:`evaluate` defines it. Model selection (a preset's budget, learning
        rate, sizes) reads this, never :meth:`evaluate`; the task card says what the split holds."""
        raise TaskError(f"task {self.name!r} has no validation split")

    def theory(self, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Closed-form metrics for the latest generation, where the task has them.

        ``records`` are the generation records so far, the latest (without its theory
        metrics yet) last. Returns extra metrics (e.g. ``theory_loss``) or ``{}``.
        """
        return {}

    @classmethod
    def scaling_law_experiment(cls) -> Mapping[str, Any] | None:
        """The committed numbers of the task's scaling-law experiment, if it has one: ``T`` (rows per
        generation) and ``simulated`` (generation -> one ``[loss, se]`` per ``T``) of a replace chain.
        The collapse profile's scaling-law definition reads it; ``None``: not measurable on this task."""
        return None

    def write_artifacts(self, model: Any, generation: int, directory: Path, rng: np.random.Generator) -> list[str]:
        """Save human-readable outputs (sample grids, text, SDF) and return their file names."""
        return []

    @abc.abstractmethod
    def save_model(self, model: Any, path: Path) -> None:
        """Write ``model`` to ``path`` (the loop makes the write atomic)."""

    @abc.abstractmethod
    def load_model(self, path: Path) -> Any:
        """Read a model written by :meth:`save_model`."""

    # --------------------------------------------- optional hooks for strategies
    def verify(self, pool: Pool, quality: float, rng: np.random.Generator) -> np.ndarray:
        """A verifier independent of the generator chain (Feng et al. 2024, arXiv 2406.07515).

        Returns one score per item (shape ``(n,)``, or ``(n, replicas)``): the verifier accepts
        an item when its score is >= 0, and higher means more confidently correct. ``quality``
        in [0, 1] sets how good the verifier is (1: the task's best verifier; 0: uninformative);
        each task card says what it means there."""
        raise TaskError(f"task {self.name!r} offers no verifier")

    def correct(self, pool: Pool, strength: float, rng: np.random.Generator) -> Pool:
        """Self-correction (Gillman et al. 2024, arXiv 2402.07087): each item moved toward the data
        manifold by the task's expert, ``strength`` in [0, 1] (0 leaves it unchanged)."""
        raise TaskError(f"task {self.name!r} offers no expert for self-correction")

    def reward(self, pool: Pool) -> np.ndarray:
        """A per-item reward, higher is better (Ferbach et al. 2024, arXiv 2407.09499); shape as :meth:`verify`."""
        raise TaskError(f"task {self.name!r} offers no reward")

    def features(self, pool: Pool) -> np.ndarray:
        """Per-item feature vectors, shape ``(n, k)`` (or ``(n, replicas, k)``), in which real and
        synthetic items can be told apart by a discriminator (density-ratio filtering)."""
        raise TaskError(f"task {self.name!r} offers no features")

    def fresh_real_pool(self, n: int, rng: np.random.Generator) -> Pool:
        """``n`` new real examples disjoint from :meth:`real_pool` (oracle strategies only)."""
        raise TaskError(f"task {self.name!r} has no reserve of fresh real data")
