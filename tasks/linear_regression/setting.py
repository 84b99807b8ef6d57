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

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from collapselab.errors import ConfigError

SAME = -1  # the sentinel: "as the real data" / "the run seed"
SPECTRA = ("isotropic", "power")


def _number(config: Mapping[str, Any], key: str) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}")
    return float(value)


def _integer(config: Mapping[str, Any], key: str, low: int, sentinel: bool = False) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
    value = int(value)
    if value < low and not (sentinel and value == SAME):
        allowed = f">= {low}" + (f" or {SAME}" if sentinel else "")
        raise ConfigError(f"config key {key!r} must be {allowed}, got {value}")
    return value


def _choice(config: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = config[key]
    if value not in choices:
        raise ConfigError(f"config key {key!r} must be one of {list(choices)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class Setting:
    """The resolved configuration (sentinels replaced); raises :class:`ConfigError` naming the key.
    ``design`` names a kind of real data, which :func:`data.kind` checks (it holds the kinds)."""

    dim: int
    n_samples: int
    noise_var: float
    generator_samples: int
    generator_noise_var: float
    design: str
    spectrum: str
    spectrum_decay: float
    source_r: float
    trials: int
    examples: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Setting:
        noise_var = _number(config, "noise_var")
        if noise_var < 0:
            raise ConfigError(f"config key 'noise_var' must be >= 0, got {noise_var}")
        generator_noise_var = _number(config, "generator_noise_var")
        if generator_noise_var < 0 and generator_noise_var != SAME:
            raise ConfigError(f"config key 'generator_noise_var' must be >= 0 or {SAME} (= noise_var), "
                              f"got {generator_noise_var}")
        decay, source = _number(config, "spectrum_decay"), _number(config, "source_r")
        if decay <= 0:
            raise ConfigError(f"config key 'spectrum_decay' must be > 0, got {decay}")
        if source <= 0:
            raise ConfigError(f"config key 'source_r' must be > 0, got {source}")
        n_samples = _integer(config, "n_samples", 1)
        generator_samples = _integer(config, "generator_samples", 1, sentinel=True)
        examples = _integer(config, "examples", 1, sentinel=True)
        _integer(config, "data_seed", 0, sentinel=True)
        return cls(
            dim=_integer(config, "dim", 1),
            n_samples=n_samples,
            noise_var=noise_var,
            generator_samples=n_samples if generator_samples == SAME else generator_samples,
            generator_noise_var=noise_var if generator_noise_var == SAME else generator_noise_var,
            design=str(config["design"]),  # a kind of real data: checked by data.kind
            spectrum=_choice(config, "spectrum", SPECTRA),
            spectrum_decay=decay,
            source_r=source,
            trials=_integer(config, "trials", 1),
            examples=n_samples if examples == SAME else examples,
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
