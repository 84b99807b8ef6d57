"""The regression setting of Dohmatob, Feng & Kempe 2024 (arXiv 2402.07712, Sec. 3), resolved from a config.

Rows x ~ N(0, Sigma) with Sigma = diag(s_1..s_d); labels y = x.w* + N(0, sigma^2) for the real data
(T = ``n_samples`` rows) and y = x.w_prev + N(0, sigma0^2) for every synthetic generation
(T0 = ``generator_samples`` rows), where w_prev is the generator of the generation before.

- ``spectrum=isotropic``: Sigma = I and w* uniform on the unit sphere, drawn per trial.
- ``spectrum=power``: s_k = k^-beta (``spectrum_decay``) and the deterministic, unnormalised
  w*_k = k^(-(1 + 2 beta r - beta) / 2) (``source_r`` = r), so that s_k (w*_k)^2 = k^(-1 - 2 beta r):
  the capacity and source conditions of the paper's Sec. 5.

The compute budget of one fit is ``examples``: the examples a standard fit processes, drawn from
whatever pool it is given (:func:`fitting.budget_weights`), the closed-form analogue of optimiser
steps x batch size.

The value -1 is the documented sentinel of four keys: ``generator_samples = -1`` means
``n_samples``, ``generator_noise_var = -1`` means ``noise_var`` (0 is a valid value: a
noise-free generator), ``examples = -1`` means ``n_samples`` (a standard fit spends as many
examples as the real pool holds), and ``data_seed = -1`` means "the run seed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from collapselab.contracts.task_config import TaskConfig, validated

SAME = -1  # the sentinel: "as the real data" / "the run seed"
#: The kinds of real data (``data.KINDS`` holds one class per name).
Design = Literal["fixed", "fresh"]
#: The keys whose value may also be the sentinel, and their lowest other value.
_LOWEST = {"generator_samples": 1, "generator_noise_var": 0, "data_seed": 0, "examples": 1}


class LinearRegressionConfig(TaskConfig):
    """The task's configuration as given (sentinels unresolved); :class:`Setting` resolves it."""

    dim: int = Field(ge=1, description="d, the number of features")
    n_samples: int = Field(ge=1, description="T, the real rows")
    noise_var: float = Field(ge=0, description="sigma^2, the real labels' noise variance")
    generator_samples: int = Field(description=f"T0, the rows of each synthetic generation ({SAME}: n_samples)")
    generator_noise_var: float = Field(description=f"sigma0^2, the synthetic labels' noise variance ({SAME}: noise_var)")
    design: Design
    spectrum: Literal["isotropic", "power"]
    spectrum_decay: float = Field(gt=0, description="beta of the power spectrum")
    source_r: float = Field(gt=0, description="r, the source condition of the power spectrum")
    data_seed: int = Field(description=f"seed of the real data ({SAME}: the run seed)")
    trials: int = Field(ge=1, description="Monte-Carlo trials run vectorised")
    examples: int = Field(description=f"examples one standard fit spends ({SAME}: n_samples)")

    @field_validator(*_LOWEST)
    @classmethod
    def _value_or_same(cls, value: float, info: ValidationInfo) -> float:
        lowest = _LOWEST[str(info.field_name)]
        if value < lowest and value != SAME:
            raise ValueError(f"must be >= {lowest} or {SAME}")
        return value


@dataclass(frozen=True)
class Setting:
    """The resolved configuration (sentinels replaced); :meth:`from_config` raises
    :class:`~collapselab.errors.ConfigError` naming every bad key."""

    dim: int
    n_samples: int
    noise_var: float
    generator_samples: int
    generator_noise_var: float
    design: Design
    spectrum: str
    spectrum_decay: float
    source_r: float
    trials: int
    examples: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | LinearRegressionConfig) -> Setting:
        c = config if isinstance(config, LinearRegressionConfig) else \
            validated(LinearRegressionConfig, config, "task 'linear_regression'")
        return cls(
            dim=c.dim,
            n_samples=c.n_samples,
            noise_var=c.noise_var,
            generator_samples=c.n_samples if c.generator_samples == SAME else c.generator_samples,
            generator_noise_var=c.noise_var if c.generator_noise_var == SAME else c.generator_noise_var,
            design=c.design,
            spectrum=c.spectrum,
            spectrum_decay=c.spectrum_decay,
            source_r=c.source_r,
            trials=c.trials,
            examples=c.n_samples if c.examples == SAME else c.examples,
        )

    @cached_property
    def eigenvalues(self) -> np.ndarray:
        """s_1..s_d, the diagonal of Sigma."""
        if self.spectrum == "isotropic":
            return np.ones(self.dim)
        return np.arange(1, self.dim + 1, dtype=np.float64) ** -self.spectrum_decay

    @cached_property
    def power_signal(self) -> np.ndarray:
        """The deterministic w* of ``spectrum=power`` (Dohmatob et al. 2024, Sec. 5)."""
        beta, r = self.spectrum_decay, self.source_r
        return np.arange(1, self.dim + 1, dtype=np.float64) ** (-(1.0 + 2.0 * beta * r - beta) / 2.0)

    def noise_var_of(self, origin: int) -> float:
        """Label-noise variance of the items of ``origin`` (-1 real, g >= 1 synthetic)."""
        return self.noise_var if origin < 0 else self.generator_noise_var
