"""The collapse profile: every definition of model collapse, measured on a run or an entry.

Schaeffer et al. 2025 ("Position: Model Collapse Does Not Mean What You Think", arXiv 2503.03150,
Sec. 2) list the definitions of "model collapse" in use; a benchmark should report all of them
rather than one number. The profile computes one field per definition from what each generation
records (``records[g].metrics``), for one run (one seed) or for an entry's runs on a task (over
seeds), each with its value, its 95% interval over seeds, and a verdict: ``collapsed``,
``not collapsed`` or ``not measurable`` (with the reason).

Generation 0 is the reference of every measure (the same fit for every strategy of a seed), G the
last generation. The definitions and the task-side measures they read:

- ``risk_catastrophic`` (definition 1): L_G / L_0 of the primary loss.
- ``risk_increase`` (definition 2): the same ratio; any increase counts.
- ``divergence`` (definition 3): the slope per generation of r_g = L_g / L_0 over the last
  generations (the last half, at least 3 points): a loss that diverges keeps growing (replace on
  the regression task grows linearly, accumulate converges: Gerstgrasser et al. 2024). A converging
  loss still rises over a finite horizon, so the slope must also not have decelerated: at least
  ``DECELERATION`` = 0.5 times the slope over the first generations (0..k-1).
- ``scaling_law`` (definition 4): the change of the error's exponent in the number of rows T
  between generation 0 and the last generation of the regression task's scaling-law experiment
  (Dohmatob, Feng & Kempe 2024, Sec. 5; ``tasks/linear_regression/figures/scaling_law.json``, given by
  the task's ``scaling_law_experiment``), a chain of replace, so it is the replace entry's; every other
  entry and task: not measurable (no cheap defensible measurement).
- ``variance`` (definition 5): ``variance_ratio``, the spread of the model's samples relative to
  the real data's in the task's own terms (and any ``*_variance_ratio`` part the task records).
- ``modes`` (definition 6): ``mode_coverage`` (the share of the real data's modes the samples
  cover: falls), ``recall`` (improved recall, Kynkaanniemi et al. 2019: falls) and
  ``mode_mixing`` (the share of samples that fall between modes: rises), as the task records them.
- ``tails`` (definition 7): ``tail_loss`` and ``common_loss``, the primary loss on the rarest
  stratum of the real test data and on the common strata, each task's strata fixed in advance;
  the statistic is the tail's growth over the common strata's, (T_G / T_0) / (C_G / C_0): Shumailov
  et al. 2024's "the tails vanish first" reads as > 1.
- ``hallucination`` (definition 8): ``hallucination``, the share of samples outside the real
  support in the task's terms (1 - improved precision, invented words, invalid geometry).

A task that records none of a definition's measures gets ``not measurable`` with that reason.

Intervals (the scorer's, :mod:`collapselab.scoring.scorer`): a ratio of means over seeds (L_G/L_0,
variance, modes) gets Fieller's interval with Student's t on n - 1 degrees of freedom (unbounded:
no interval); a difference (hallucination, mixing), a slope or a per-seed ratio (tails) gets the
Student-t interval of its per-seed values. One run (n = 1) has no interval over seeds, except the
divergence slope, which gets the t interval of its least-squares fit over its k points (k - 2
degrees of freedom).

Verdict rules (the numbers are the benchmark's choices; Schaeffer et al. give none):

- *collapsed* when the value is beyond the definition's material threshold on the collapsed side
  **and** the interval excludes "no change" (1 for ratios, 0 for differences and slopes), i.e. the
  change is both material and significant at the scorer's level (a two-sided 95% interval lies on
  one side: the one-sided test at ``GATE_LEVEL`` = 0.025 of the degradation gate). With one seed
  and no interval, the value alone decides (a point verdict: ``significance`` says so).
- *not collapsed* otherwise, including an interval that straddles "no change" (no evidence).
- *not measurable* when the task records no measure of the definition, or the runs are too short.

Thresholds: ``risk_catastrophic``: L_G/L_0 >= 2 (the loss at least doubles, ``CATASTROPHIC``);
``risk_increase``: > 1 (any increase); ``divergence``: slope > 0 and >= half the early slope; ``variance`` and ``modes``:
a fall of at least 10% from generation 0 (``MATERIAL`` = 0.1); ``tails``: the tail grows at least
10% more than the common strata; ``hallucination`` and ``mode_mixing``: a rise of at least 0.05 in
the share of samples (``MATERIAL_SHARE``); ``scaling_law``: the exponent is shallower (slope of
log error in log T rises) with an interval that excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from collapselab.contracts import registry
from collapselab.errors import CollapseLabError
from collapselab.formats.records import Record
from collapselab.scoring import scorer

COLLAPSED, NOT_COLLAPSED, NOT_MEASURABLE = "collapsed", "not collapsed", "not measurable"
CATASTROPHIC = 2.0
MATERIAL = 0.1
MATERIAL_SHARE = 0.05
DECELERATION = 0.5
#: The definitions, in the order of Schaeffer et al. 2025, Sec. 2.
DEFINITIONS = ("risk_catastrophic", "risk_increase", "divergence", "scaling_law", "variance", "modes", "tails",
               "hallucination")
#: The task-side measure keys the profile reads from each generation's metrics.
VARIANCE, MODE_COVERAGE, RECALL, MODE_MIXING = "variance_ratio", "mode_coverage", "recall", "mode_mixing"
TAIL_LOSS, COMMON_LOSS, HALLUCINATION = "tail_loss", "common_loss", "hallucination"
SCALING_LAW_STRATEGY = "replace"

Runs = Mapping[int, Sequence[Record]]


@dataclass(frozen=True)
class Field:
    """One definition's measurement: value, interval over seeds, verdict and the rule that gave it."""

    definition: str
    measure: str
    verdict: str
    rule: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    significance: str = "interval over seeds"
    parts: tuple[Field, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"definition": self.definition, "measure": self.measure, "verdict": self.verdict,
                               "rule": self.rule, "value": _json(self.value), "ci_low": _json(self.ci_low),
                               "ci_high": _json(self.ci_high), "n": self.n, "significance": self.significance}
        if self.parts:
            out["parts"] = [part.as_dict() for part in self.parts]
        return out

    def text(self) -> str:
        """``verdict (value [low, high])`` for a table cell."""
        if self.value is None:
            return self.verdict
        interval = "" if self.ci_low is None or self.ci_high is None else f" [{self.ci_low:.3g}, {self.ci_high:.3g}]"
        return f"{self.verdict} ({self.value:.3g}{interval})"


def _json(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def unmeasurable(definition: str, reason: str) -> Field:
    return Field(definition, reason, NOT_MEASURABLE, "not measurable: " + reason)


@dataclass(frozen=True)
class Profile:
    """One field per definition (:data:`DEFINITIONS`)."""

    fields: Mapping[str, Field]
    seeds: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), **{name: self.fields[name].as_dict() for name in DEFINITIONS}}

    def collapsed(self) -> list[str]:
        """The definitions under which the runs collapsed."""
        return [name for name in DEFINITIONS if self.fields[name].verdict == COLLAPSED]


# ----------------------------------------------------------------- verdicts
def _verdict(value: float, low: float | None, high: float | None, n: int, threshold: float, unchanged: float,
             rises: bool, interval: str = "interval over seeds") -> tuple[str, str]:
    """The verdict rule of the module docstring, and how significance was judged (``interval``: what the
    interval is; with one seed only an interval from within the run, as the divergence slope's, counts)."""
    beyond = value >= threshold if rises else value <= threshold
    material = beyond and (value > unchanged if rises else value < unchanged)
    if low is None or high is None or (n < 2 and interval == "interval over seeds"):
        if n < 2:
            return (COLLAPSED if material else NOT_COLLAPSED), "point verdict (one seed: no interval)"
        return NOT_COLLAPSED, "interval over seeds unbounded"
    significant = low > unchanged if rises else high < unchanged
    return (COLLAPSED if material and significant else NOT_COLLAPSED), interval


def _rule(statistic: str, threshold: float, unchanged: float, rises: bool) -> str:
    side = ">=" if rises else "<="
    excludes = "above" if rises else "below"
    return (f"collapsed when {statistic} {side} {threshold:g} and its 95% interval lies {excludes} {unchanged:g} "
            f"(one seed: the value alone)")


def _values(runs: Runs, key: str) -> dict[int, list[float]] | None:
    """Per seed the curve of metric ``key`` cut to the shortest run, or ``None`` if any generation lacks it."""
    length = min(len(records) for records in runs.values())
    curves: dict[int, list[float]] = {}
    for seed, records in runs.items():
        values = [r.metrics.get(key) for r in records[:length]]
        curve = [float(v) for v in values if v is not None and math.isfinite(v)]
        if len(curve) != len(values):
            return None
        curves[seed] = curve
    return curves


def _ratio_field(definition: str, measure: str, curves: Mapping[int, Sequence[float]], threshold: float,
                 rises: bool) -> Field:
    """mean_s X_G / mean_s X_0 with Fieller's interval over seeds."""
    seeds = sorted(curves)
    last = np.array([curves[s][-1] for s in seeds])
    first = np.array([curves[s][0] for s in seeds])
    rule = _rule(f"mean {measure}_G / mean {measure}_0", threshold, 1.0, rises)
    if not float(first.mean()) > 0:
        return unmeasurable(definition, f"{measure} at generation 0 is not positive")
    value = float(last.mean() / first.mean())
    low, high = scorer.fieller(last, first)
    verdict, significance = _verdict(value, low, high, len(seeds), threshold, 1.0, rises)
    return Field(definition, measure, verdict, rule, value, low, high, len(seeds), significance)


def _mean_field(definition: str, measure: str, values: Sequence[float], threshold: float, unchanged: float,
                rises: bool, statistic: str) -> Field:
    """The mean of per-seed ``values`` with its Student-t interval."""
    summary = scorer.summarize(values)
    verdict, significance = _verdict(summary.mean, summary.ci_low, summary.ci_high, summary.n, threshold, unchanged,
                                     rises)
    return Field(definition, measure, verdict, _rule(statistic, threshold, unchanged, rises), summary.mean,
                 summary.ci_low, summary.ci_high, summary.n, significance)


def _combine(definition: str, parts: Sequence[Field], missing: str) -> Field:
    """A definition read from several measures: the first measurable part gives the value, and it is
    collapsed when any part is (the rule says so)."""
    measured = [p for p in parts if p.verdict != NOT_MEASURABLE]
    if not measured:
        return unmeasurable(definition, missing)
    head = measured[0]
    verdict = COLLAPSED if any(p.verdict == COLLAPSED for p in measured) else NOT_COLLAPSED
    rule = head.rule if len(measured) == 1 else "collapsed when any part is: " + "; ".join(
        f"{p.measure}: {p.rule}" for p in measured)
    return Field(definition, head.measure, verdict, rule, head.value, head.ci_low, head.ci_high, head.n,
                 head.significance, tuple(measured) if len(measured) > 1 else ())


# -------------------------------------------------------------- definitions
def risk_fields(runs: Runs) -> tuple[Field, Field]:
    loss = _values(runs, "loss")
    if loss is None or min(len(c) for c in loss.values()) < 2:
        reason = "the runs have no synthetic generation" if loss else "a generation lacks its loss"
        return unmeasurable("risk_catastrophic", reason), unmeasurable("risk_increase", reason)
    return (_ratio_field("risk_catastrophic", "loss", loss, CATASTROPHIC, rises=True),
            _ratio_field("risk_increase", "loss", loss, 1.0, rises=True))


def slope(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Least-squares slope of ``values`` against their index, with its 95% t interval (k - 2 df)."""
    x = np.arange(len(values), dtype=np.float64)
    fit = stats.linregress(x, np.asarray(values, dtype=np.float64))
    if len(values) < 3:
        return float(fit.slope), None, None
    half = scorer._t(len(values) - 2) * float(fit.stderr)
    return float(fit.slope), float(fit.slope) - half, float(fit.slope) + half


def last_generations(generations: int) -> int:
    """How many of the last generations the divergence slope is fitted to: the last half, at least 3."""
    return max(3, (generations + 1) // 2)


def divergence_field(runs: Runs) -> Field:
    """The last generations' slope of r_g; collapsed when its interval lies above 0 and it is at least
    ``DECELERATION`` times the slope over the first generations (a loss that converges decelerates: over
    a finite horizon a slowly converging curve still rises, so a positive slope alone cannot tell them apart)."""
    loss = _values(runs, "loss")
    if loss is None:
        return unmeasurable("divergence", "a generation lacks its loss")
    generations = min(len(c) for c in loss.values()) - 1
    k = last_generations(generations)
    if generations < k:
        return unmeasurable("divergence", f"{generations} synthetic generations; the slope needs at least 3")
    ratios = {s: [v / c[0] for v in c[: generations + 1]] for s, c in loss.items()}
    late = {s: slope(r[generations - k + 1:]) for s, r in ratios.items()}
    early = float(np.mean([slope(r[:k])[0] for r in ratios.values()]))
    measure = (f"slope of L_g / L_0 per generation over generations {generations - k + 1}..{generations} "
               f"(over 0..{k - 1}: {early:.3g})")
    rule = (_rule("the slope", 0.0, 0.0, True) + f", and the slope is at least {DECELERATION:g} times the slope over "
            f"generations 0..{k - 1} (no deceleration)")
    if len(late) == 1:
        value, low, high = next(iter(late.values()))
        verdict, significance = _verdict(value, low, high, 1, 0.0, 0.0, True, "t interval of the run's least-squares slope")
        found = Field("divergence", measure, verdict, rule, value, low, high, 1, significance)
    else:
        found = _mean_field("divergence", measure, [v[0] for v in late.values()], 0.0, 0.0, True, "the slope")
        found = Field(found.definition, measure, found.verdict, rule, found.value, found.ci_low, found.ci_high,
                      found.n, found.significance)
    if found.verdict == COLLAPSED and found.value is not None and found.value < DECELERATION * early:
        return Field("divergence", measure, NOT_COLLAPSED, rule, found.value, found.ci_low, found.ci_high, found.n,
                     found.significance)
    return found


def _falls(definition: str, runs: Runs, key: str) -> Field:
    curves = _values(runs, key)
    if curves is None:
        return unmeasurable(definition, f"the task records no {key}")
    return _ratio_field(definition, key, curves, 1.0 - MATERIAL, rises=False)


def _share_rises(definition: str, runs: Runs, key: str) -> Field:
    curves = _values(runs, key)
    if curves is None:
        return unmeasurable(definition, f"the task records no {key}")
    return _mean_field(definition, f"{key}_G - {key}_0", [c[-1] - c[0] for c in curves.values()], MATERIAL_SHARE,
                       0.0, True, f"mean {key}_G - {key}_0")


def variance_field(runs: Runs) -> Field:
    first = next(iter(runs.values()))
    keys = sorted(k for k in first[0].metrics if k.endswith("_" + VARIANCE) and k != VARIANCE) if first else []
    parts = [_falls("variance", runs, key) for key in (VARIANCE, *keys)]
    return _combine("variance", parts, f"the task records no {VARIANCE}")


def modes_field(runs: Runs) -> Field:
    parts = [_falls("modes", runs, MODE_COVERAGE), _falls("modes", runs, RECALL),
             _share_rises("modes", runs, MODE_MIXING)]
    return _combine("modes", parts, f"the task records none of {MODE_COVERAGE}, {RECALL}, {MODE_MIXING}")


def tails_field(runs: Runs) -> Field:
    tail, common = _values(runs, TAIL_LOSS), _values(runs, COMMON_LOSS)
    if tail is None or common is None:
        return unmeasurable("tails", f"the task records no {TAIL_LOSS} and {COMMON_LOSS}")
    growth = []
    for seed in sorted(tail):
        t, c = tail[seed], common[seed]
        if not (t[0] > 0 and c[0] > 0 and c[-1] > 0):
            return unmeasurable("tails", "a stratum's loss is not positive")
        growth.append((t[-1] / t[0]) / (c[-1] / c[0]))
    return _mean_field("tails", "(tail_G / tail_0) / (common_G / common_0)", growth, 1.0 + MATERIAL, 1.0, True,
                       "mean tail growth over common growth")


def hallucination_field(runs: Runs) -> Field:
    return _share_rises("hallucination", runs, HALLUCINATION)


# -------------------------------------------------------------- scaling law
def _exponent(sizes: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """Slope of log loss in log T with its standard error."""
    fit = stats.linregress(np.log(sizes), np.log(losses))
    return float(fit.slope), float(fit.stderr)


def scaling_law_field(experiment: Mapping[str, Any]) -> Field:
    """From the scaling-law experiment's numbers: the exponent of the last generation's error in T
    minus generation 0's, with a t interval on k - 2 degrees of freedom (k sizes) from both fits'
    standard errors; collapsed when it is > 0 (the error falls more slowly with data) and its
    interval excludes 0."""
    sizes = np.asarray(experiment["T"], dtype=np.float64)
    simulated = experiment["simulated"]
    last = max(simulated, key=int)
    first_slope, first_se = _exponent(sizes, np.array([v[0] for v in simulated["0"]]))
    last_slope, last_se = _exponent(sizes, np.array([v[0] for v in simulated[last]]))
    change = last_slope - first_slope
    half = scorer._t(max(1, sizes.size - 2)) * math.hypot(first_se, last_se)
    low, high = change - half, change + half
    verdict = COLLAPSED if change > 0 and low > 0 else NOT_COLLAPSED
    measure = (f"exponent of the error in T at generation {last} ({last_slope:.3g}) minus generation 0's "
               f"({first_slope:.3g}), scaling-law experiment (replace chain, downstream ridge)")
    return Field("scaling_law", measure, verdict, "collapsed when the change > 0 and its 95% interval lies above 0",
                 change, low, high, sizes.size, "t interval of the two log-log fits (k - 2 df)")


def _scaling_law(task: str | None, strategy: str | None) -> Field:
    """The task's scaling-law experiment (:meth:`Task.scaling_law_experiment`), for the replace chain it runs."""
    try:
        experiment = registry.task_class(task).scaling_law_experiment() if task else None
    except CollapseLabError:
        experiment = None
    if experiment is None:
        return unmeasurable("scaling_law", "the task has no scaling-law experiment")
    if strategy != SCALING_LAW_STRATEGY:
        return unmeasurable("scaling_law", "the scaling-law experiment runs the replace chain only")
    return scaling_law_field(experiment)


# ------------------------------------------------------------------ profile
def profile(runs: Runs, task: str | None = None, strategy: str | None = None) -> Profile:
    """The profile of ``runs`` (seed -> generation records) of one task and strategy: one seed gives a
    run's profile, several an entry's over seeds (curves cut to the shortest run)."""
    if not runs or min(len(records) for records in runs.values()) == 0:
        reason = "no generations recorded"
        return Profile({name: unmeasurable(name, reason) for name in DEFINITIONS}, tuple(sorted(runs)))
    catastrophic, increase = risk_fields(runs)
    fields = {
        "risk_catastrophic": catastrophic,
        "risk_increase": increase,
        "divergence": divergence_field(runs),
        "scaling_law": _scaling_law(task, strategy),
        "variance": variance_field(runs),
        "modes": modes_field(runs),
        "tails": tails_field(runs),
        "hallucination": hallucination_field(runs),
    }
    return Profile(fields, tuple(sorted(runs)))
