"""The Strategy contract: what each generation trains on.

A strategy is a small class (in the spirit of benchopt's solver plugins): declare
``name``, ``citation`` and default ``parameters``; implement :meth:`Strategy.training_pool`;
optionally override :meth:`Strategy.curate`, :meth:`Strategy.sample_size` and
:meth:`Strategy.fit_options`. The loop (:mod:`collapselab.engine.loop`) calls the hooks in the same
order for every strategy, so strategies differ only in what they decide.

Example::

    from collapselab import Strategy, StrategyContext, Pool

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

from collapselab.contracts import selection
from collapselab.contracts.params import coerce
from collapselab.contracts.pool import Pool
from collapselab.errors import ParameterError


@dataclass(frozen=True)
class Budget:
    """Sizes a strategy plans with: the real pool's size and the default samples per generation."""

    real_size: int
    synthetic_size: int


@dataclass
class StrategyContext:
    """Everything a strategy may see at generation ``generation`` (never the test data)."""

    generation: int
    real: Pool
    synthetic: Sequence[Pool]
    task: Mapping[str, Any]
    rng: np.random.Generator
    budget: Budget
    _score: Callable[[Pool], np.ndarray] | None = field(default=None, repr=False)
    _fresh_real: Callable[[int], Pool] | None = field(default=None, repr=False)

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

    def score(self, pool: Pool) -> np.ndarray:
        """Per-item quality of ``pool`` (higher is better) under the verifier model.

        The verifier is generation 0's model, trained on the real pool only; the task defines
        the score. Raises ``NotImplementedError`` where the task has no score.
        """
        if self._score is None:
            raise NotImplementedError("scores are available to curate() only")
        return self._score(pool)

    def fresh_real(self, n: int) -> Pool:
        """``n`` new real examples beyond the real pool; only strategies declaring
        ``uses_extra_real_data = True`` may draw them (they are ranked in a separate track)."""
        if self._fresh_real is None:
            raise PermissionError("this strategy does not declare uses_extra_real_data = True")
        return self._fresh_real(n)


class Strategy:
    """Base class of mitigation strategies.

    Class attributes:
        name: registry name (``collapselab run --strategy NAME``).
        citation: the paper the strategy comes from.
        parameters: parameter name -> default; set with ``NAME[key=value,...]``.
        uses_extra_real_data: True for oracles that draw fresh real data each generation.
    """

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    parameters: ClassVar[Mapping[str, Any]] = {}
    uses_extra_real_data: ClassVar[bool] = False

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
        """Raise :class:`collapselab.contracts.params.ParameterError` for invalid parameter values."""

    def check_task(self, task: Mapping[str, Any]) -> None:
        """Raise :class:`collapselab.contracts.errors.PluginError` if this strategy cannot run on ``task``
        (its :meth:`collapselab.Task.describe`); called before generation 0."""

    def sample_size(self, ctx: StrategyContext) -> int:
        """How many samples to draw from the previous model this generation."""
        return ctx.budget.synthetic_size

    def curate(self, ctx: StrategyContext, samples: Pool) -> Pool:
        """Filter, verify or re-weight new samples before they enter the history."""
        return samples

    def training_pool(self, ctx: StrategyContext) -> Pool:
        """The pool the generation-``ctx.generation`` model is trained on."""
        raise NotImplementedError(f"strategy {self.name!r} does not implement training_pool(ctx)")

    def fit_options(self, ctx: StrategyContext) -> dict[str, Any]:
        """Task fit options for this generation (keys must be among the task's ``fit_options``)."""
        return {}
