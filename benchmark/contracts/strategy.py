"""The Strategy contract: what each generation trains on.

A strategy is a small class (in the spirit of benchopt's solver plugins): declare
``name``, ``citation`` and default ``parameters``; implement :meth:`Strategy.training_pool`;
optionally override :meth:`Strategy.curate`, :meth:`Strategy.sample_size`,
:meth:`Strategy.sampling_options` and :meth:`Strategy.fit_options`. The loop
(:mod:`collapselab.engine.loop`) calls the hooks in the same order for every strategy, so
strategies differ only in what they decide. The loop builds a fresh strategy object every
generation: whatever a strategy needs must come from its context.

Example::

    from collapselab import Pool, Strategy, StrategyContext

    class KeepHalfReal(Strategy):
        name = "keep-half-real"
        citation = "my paper"

        def training_pool(self, ctx: StrategyContext) -> Pool:
            half = ctx.subsample(ctx.real, len(ctx.real) // 2)
            return Pool.concat([half, ctx.latest])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from collapselab.contracts import memory, selection
from collapselab.contracts.params import coerce, shown
from collapselab.contracts.pool import Pool
from collapselab.contracts.task import TaskDescription
from collapselab.errors import ParameterError, PluginError


@dataclass(frozen=True)
class Budget:
    """Sizes a strategy plans with: the real pool's size, the default samples per generation,
    the optimiser-step budget of one standard fit (``None`` for closed-form fits) and the
    examples one standard fit processes (``None``: the task declares no budget)."""

    real_size: int
    synthetic_size: int
    steps: int | None = None
    examples: int | None = None


@dataclass(frozen=True)
class TaskHooks:
    """The task's optional hooks, bound by the loop to this generation's seed streams."""

    verify: Callable[[Pool, float], np.ndarray] | None = None
    correct: Callable[[Pool, float], Pool] | None = None
    reward: Callable[[Pool], np.ndarray] | None = None
    features: Callable[[Pool], np.ndarray] | None = None
    fresh_real: Callable[[int], Pool] | None = None


@dataclass
class StrategyContext:
    """Everything a strategy may see at generation ``generation`` (never the test data)."""

    generation: int
    real: Pool
    synthetic: Sequence[Pool]
    task: TaskDescription
    rng: np.random.Generator
    budget: Budget
    _hooks: TaskHooks = field(default_factory=TaskHooks, repr=False)

    @property
    def latest(self) -> Pool:
        """S_g, the synthetic data of this generation (after curation)."""
        if not self.synthetic:
            raise IndexError("generation 0 has no synthetic data")
        return self.synthetic[-1]

    def accumulated(self, include_real: bool = True) -> Pool:
        """The real pool (optionally) followed by S_1..S_g."""
        parts = ([self.real] if include_real else []) + list(self.synthetic)
        return Pool.concat(parts)

    def subsample(self, pool: Pool, n: int) -> Pool:
        """A uniform sample of ``n`` items without replacement, drawn with this context's rng."""
        return selection.subsample(pool, n, self.rng)

    def _hook(self, name: str) -> Callable[..., Any]:
        hook = getattr(self._hooks, name)
        if hook is None:
            offered = ", ".join(sorted(self.task.hooks)) or "none"
            raise PluginError(f"task {self.task.name!r} offers no {name!r} hook here (it offers: {offered})")
        return hook

    def verify(self, pool: Pool, quality: float = 1.0) -> np.ndarray:
        """The task's independent verifier (:meth:`collapselab.Task.verify`): accept where score >= 0."""
        return self._hook("verify")(pool, quality)

    def correct(self, pool: Pool, strength: float) -> Pool:
        """The task's expert moves each item toward the data manifold (:meth:`collapselab.Task.correct`)."""
        return self._hook("correct")(pool, strength)

    def reward(self, pool: Pool) -> np.ndarray:
        """The task's per-item reward (:meth:`collapselab.Task.reward`)."""
        return self._hook("reward")(pool)

    def features(self, pool: Pool) -> np.ndarray:
        """The task's per-item features for discriminators (:meth:`collapselab.Task.features`)."""
        return self._hook("features")(pool)

    def fresh_real(self, n: int) -> Pool:
        """``n`` new real examples beyond the real pool; only strategies declaring
        ``uses_extra_real_data = True`` may draw them (they are ranked in a separate track)."""
        if self._hooks.fresh_real is None:
            raise PluginError("only a strategy declaring uses_extra_real_data = True may draw fresh real data, "
                              f"on a task that has a reserve (task {self.task.name!r})")
        problem = memory.items_problem(int(n), memory.item_bytes(self.real))
        if problem is not None:
            raise PluginError(f"fresh_real({shown(n)}): {problem}")
        return self._hooks.fresh_real(n)


#: The methods a strategy may override besides the required ``training_pool`` (the one list: the
#: registry checks them, ``collapselab show strategy`` lists those a strategy overrides).
OPTIONAL_HOOKS = ("curate", "sample_size", "sampling_options", "fit_options", "check_task")


class Strategy:
    """Base class of mitigation strategies.

    Class attributes:
        name: registry name (``collapselab run --strategy NAME``).
        citation: the paper the strategy comes from (its docstring states the algorithm).
        parameters: parameter name -> default; set with ``NAME[key=value,...]``.
        uses_extra_real_data: True for oracles that draw fresh real data each generation.
        requires_hooks: the task hooks the strategy calls (e.g. ``("verify",)``); tasks without
            them are refused before generation 0.
    """

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    parameters: ClassVar[Mapping[str, Any]] = {}
    uses_extra_real_data: ClassVar[bool] = False
    requires_hooks: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that names itself is a strategy and is checked as it is defined (an intermediate
        base class, without a ``name`` of its own, is not)."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            check_definition(cls, cls.__name__)

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            known = ", ".join(sorted(self.parameters)) or "none"
            raise ParameterError(f"strategy {self.name!r} has no parameter {unknown[0]!r} (parameters: {known})")
        resolved = dict(self.parameters)
        for key, value in params.items():
            try:
                resolved[key] = coerce(value, self.parameters[key])
            except ParameterError as exc:
                raise ParameterError(f"strategy {self.name!r}, parameter {key!r}: {exc}") from None
        self.params: dict[str, Any] = resolved
        for key, value in resolved.items():
            setattr(self, key, value)
        self.check_parameters()

    def check_parameters(self) -> None:
        """Raise :class:`collapselab.errors.ParameterError` for invalid parameter values."""

    def check_task(self, task: TaskDescription) -> None:
        """Raise :class:`collapselab.errors.PluginError` if this strategy cannot run on ``task``;
        called before generation 0. The base class refuses tasks that lack a required hook."""
        missing = [hook for hook in self.requires_hooks if hook not in task.hooks]
        if missing:
            raise PluginError(f"strategy {self.name!r} needs the task hook(s) {missing}, which task {task.name!r} "
                              f"does not offer (it offers: {', '.join(sorted(task.hooks)) or 'none'})")

    def sample_size(self, ctx: StrategyContext) -> int:
        """How many samples to draw from the previous model this generation."""
        return ctx.budget.synthetic_size

    def sampling_options(self, ctx: StrategyContext) -> dict[str, Any]:
        """Sampler settings for this generation (keys among the task's ``sampling_options``)."""
        return {}

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        """Filter, verify, correct or re-weight new samples before they enter the history."""
        return samples

    def training_pool(self, ctx: StrategyContext) -> Pool:
        """The pool the generation-``ctx.generation`` model is trained on."""
        raise NotImplementedError(f"strategy {self.name!r} does not implement training_pool(ctx)")

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        """Task fit options for this generation (keys must be among the task's ``fit_options``).

        Asking for more ``steps`` than ``ctx.budget.steps`` (or, on a closed-form task, more
        ``examples`` than ``ctx.budget.examples``) is allowed and recorded: the leaderboard then
        marks the strategy as using extra compute and ranks it only against others that do."""
        return {}


def check_definition(cls: type[Strategy], label: str) -> None:
    """``cls`` has a non-empty ``name``, implements ``training_pool`` and its hooks are methods."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"strategy {label!r} needs a non-empty class attribute `name`")
    if cls.training_pool is Strategy.training_pool:
        raise PluginError(f"strategy {label!r} does not implement the required method training_pool(ctx)")
    for hook in ("training_pool", *OPTIONAL_HOOKS):
        if not callable(getattr(cls, hook, None)):
            raise PluginError(f"strategy {label!r}: {hook} must be a method")
