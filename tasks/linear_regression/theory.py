"""Theory for the regression task: the papers' closed forms, and ``theory_loss`` from a run's records.

Closed forms (expectations over Gaussian rows, least squares, T > d + 1):

- one fit: sigma^2 d / (T - d - 1) in the Sigma-norm, whatever Sigma (E (X^T X)^-1 = Sigma^-1/(T-d-1));
- replace, n generations after the real fit: sigma^2 d/(T-d-1) + n sigma0^2 d/(T0-d-1), fixed or fresh
  design (Dohmatob, Feng & Kempe 2024, arXiv 2402.07712, Theorem 4.1, unregularised case;
  Gerstgrasser et al. 2024, arXiv 2404.01413, Sec. 2);
- accumulate on the fixed design: sigma^2 d/(T-d-1) sum_{i<=n+1} 1/i^2 (Gerstgrasser et al. 2024,
  Sec. 2); it does not hold with a fresh design;
- a fixed synthetic fraction p of the training data from a generator of excess risk Delta: error floor
  p^2 Delta as N -> infinity (Dohmatob, Feng, Subramonian & Kempe 2024, "Strong model collapse",
  arXiv 2410.04840; exact finite-N form in :mod:`fresh_theory`).

``theory_loss`` follows the pools a run actually used, generation by generation:

- fixed design (:mod:`fixed_theory`): exact given the run's design, for every pool made of whole
  samples that together cover the design evenly (replace, accumulate, the real pool; least squares,
  minimum norm or ridge; generator regularised or not);
- fresh design (:mod:`fresh_theory`): pools of one whole sample (replace-like), and least squares on
  fresh real rows plus one whole sample (strong model collapse); exact for least squares and
  isotropic minimum norm, deterministic equivalents for ridge and power-law minimum norm.

Every fit spends the task's budget of examples drawn from its pool (:func:`fitting.budget_weights`); the
theory covers the fits that drew whole passes over their pool (examples a multiple of the pool's size,
e.g. a pool of exactly the budget, or a strategy that asked for all of its pool): those are the pool's
own least-squares or ridge fits. A fit that drew part of its pool (accumulate at the standard budget)
gets no theory. Nor do curated or corrected samples, weights, partial samples, pools mixing
other origins, fresh real data with the fixed design, accumulation with a fresh design. A generation
whose predecessors had no theory has none either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from collapselab import REAL
from collapselab.tasks.linear_regression import fresh_theory
from collapselab.tasks.linear_regression.fixed_theory import Coefficients, FixedDesign, Source
from collapselab.tasks.linear_regression.setting import Setting


def unit_risk(dim: int, n_samples: int, noise_var: float) -> float:
    """sigma^2 d / (T - d - 1): the expected excess risk of one least-squares fit on T Gaussian rows."""
    return noise_var * dim / (n_samples - dim - 1)


def replace_risk(fits: int, dim: int, n_samples: int, noise_var: float) -> float:
    """``fits`` least-squares fits in a chain, each on T rows with noise sigma^2 (T0 = T, sigma0 = sigma)."""
    return fits * unit_risk(dim, n_samples, noise_var)


def accumulate_risk(fits: int, dim: int, n_samples: int, noise_var: float) -> float:
    """Accumulate on the fixed design after ``fits`` fits (the real one included)."""
    return unit_risk(dim, n_samples, noise_var) * float(np.sum(1.0 / np.arange(1, fits + 1) ** 2))


@dataclass(frozen=True)
class Step:
    """What generation g's fit was made of, read from its record."""

    real: int  # items of the real pool
    fresh: int  # fresh real items drawn this generation
    synthetic: Mapping[int, int]  # origin -> items (each the whole sample of that origin)
    penalty: float
    regularise_generator: bool


def _steps(records: Sequence[Mapping[str, Any]], corrected: Collection[int]) -> list[Step] | None:
    steps = []
    fresh_so_far = 0
    for g, record in enumerate(records):
        if g < len(records) - 1 and "theory_loss" not in record["metrics"]:
            return None
        composition, options = record["composition"], record.get("fit_options", {})
        fresh = int(composition.get("fresh_real", 0)) - fresh_so_far
        fresh_so_far += fresh
        synthetic = {int(o): int(n) for o, n in composition["synthetic"].items()}
        if composition.get("weighted") or any(o in corrected for o in synthetic):
            return None
        if any(n != records[o]["compute"]["samples"] for o, n in synthetic.items()):
            return None  # part of a sample, or a curated one
        total = int(composition["total"])
        if not total or int(record["compute"]["examples"]) % total:
            return None  # the fit's budget drew part of its pool: the draw, not the pool, was fitted
        steps.append(Step(int(composition["real"]) - fresh, fresh, synthetic, float(options.get("ridge_lambda", 0.0)),
                          bool(options.get("regularise_generator", True))))
    return steps


def _fixed_loss(steps: Sequence[Step], setting: Setting, design: FixedDesign) -> float | None:
    generators: list[Coefficients] = []
    noise_vars: dict[int, float] = {}
    loss = None
    for step in steps:
        if step.fresh or step.real not in (0, setting.n_samples):
            return None
        copies = {REAL: 1} if step.real else {}
        for origin, n in step.synthetic.items():
            if n % setting.n_samples:
                return None
            copies[origin] = n // setting.n_samples
        total = sum(copies.values())
        if not total:
            return None
        sources = []
        for origin, k in copies.items():
            teacher = design.truth() if origin == REAL else generators[origin - 1]
            noise_vars[origin] = setting.noise_var_of(origin) / k
            sources.append(Source(origin, teacher, noise_vars[origin], k / total))
        evaluated = design.fit(sources, step.penalty)
        generator = evaluated if step.regularise_generator or not step.penalty else design.fit(sources, 0.0)
        generators.append(generator)
        loss = design.excess_risk(evaluated, noise_vars)
    return loss


def _fresh_loss(steps: Sequence[Step], setting: Setting) -> float | None:
    generators: list[fresh_theory.Moments | None] = []
    loss = None
    for step in steps:
        evaluated, generator = _fresh_step(step, setting, generators)
        if evaluated is None:
            return None
        loss = evaluated
        generators.append(generator)
    return loss


def _fresh_step(step: Step, setting: Setting, generators: Sequence[fresh_theory.Moments | None]
                ) -> tuple[float | None, fresh_theory.Moments | None]:
    """(the evaluated model's excess risk, the generator's moments) of one fresh-design generation."""
    if len(step.synthetic) > 1 or (step.real and step.fresh):
        return None, None
    if step.synthetic:
        ((origin, n),) = step.synthetic.items()
        teacher = generators[origin - 1]
        if teacher is None or step.real:
            return None, None
        if step.fresh:  # fresh real rows plus one whole sample: strong model collapse, least squares only
            if step.penalty:
                return None, None
            risk = fresh_theory.mixture_risk(fresh_theory.excess_risk(teacher, setting), step.fresh, setting.noise_var,
                                             n, setting.generator_noise_var, setting.dim)
            return risk, None
        source, rows, noise_var = teacher, n, setting.generator_noise_var
    else:
        source, rows, noise_var = fresh_theory.truth(setting), step.real + step.fresh, setting.noise_var
    evaluated = fresh_theory.step(source, setting, rows, noise_var, step.penalty)
    if evaluated is None:
        return None, None
    generator: fresh_theory.Moments | None = evaluated
    if step.penalty and not step.regularise_generator:
        generator = fresh_theory.step(source, setting, rows, noise_var, 0.0)
    return fresh_theory.excess_risk(evaluated, setting), generator


def theory_loss(records: Sequence[Mapping[str, Any]], setting: Setting, design: FixedDesign | None,
                corrected: Collection[int] = ()) -> float | None:
    """The expected excess risk of the latest generation (``design``: the fixed design's spectral
    quantities, ``None`` for ``design=fresh``; ``corrected``: origins whose samples a task expert changed)."""
    steps = _steps(records, corrected)
    if steps is None:
        return None
    return _fixed_loss(steps, setting, design) if design is not None else _fresh_loss(steps, setting)
