"""The collapse profile: each definition's verdict on records with a known answer, and the
regression task's measures on its smoke preset (synthetic samplers with a known direction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.formats.records import Composition, Compute, Record, as_json
from collapselab.scoring import profile
from collapselab.scoring.profile import COLLAPSED, NOT_COLLAPSED, NOT_MEASURABLE
from collapselab.tasks.linear_regression import LinearRegressionTask, measures

GENERATIONS = 10


def _record(generation: int, metrics: dict[str, float]) -> Record:
    return Record(generation=generation, metrics=metrics, seconds={},
                  composition=Composition(real=1, synthetic={}, total=1, fresh_real=0),
                  compute=Compute(examples=1, steps=1, samples=0))


def _runs(metric: Callable[[int, int], dict[str, float]], seeds: int = 5) -> dict[int, list[Record]]:
    """Records of ``seeds`` runs whose generation g of seed s records ``metric(s, g)``."""
    return {s: [_record(g, metric(s, g)) for g in range(GENERATIONS + 1)] for s in range(seeds)}


def _noise(s: int, g: int, scale: float = 0.01) -> float:
    return scale * float(np.random.default_rng([s, g]).standard_normal())


def _verdicts(runs: dict[int, list[Record]], *names: str) -> list[str]:
    found = profile.profile(runs)
    return [found.fields[name].verdict for name in names]


# ----------------------------------------------------------------------- risk
def test_risk_linear_growth_collapses_on_every_risk_definition() -> None:
    runs = _runs(lambda s, g: {"loss": 1.0 + g + _noise(s, g)})
    assert _verdicts(runs, "risk_catastrophic", "risk_increase", "divergence") == [COLLAPSED] * 3
    assert profile.profile(runs).fields["divergence"].value == pytest.approx(1.0, abs=0.02)


def test_risk_a_converging_curve_increases_without_diverging() -> None:
    # 1 + 0.5 (1 - 2^-g): a bounded increase (accumulate's shape) that flattens within noise.
    runs = _runs(lambda s, g: {"loss": 1.5 - 0.5 * 2.0**-g + _noise(s, g)})
    assert _verdicts(runs, "risk_catastrophic", "risk_increase", "divergence") == [NOT_COLLAPSED, COLLAPSED,
                                                                                   NOT_COLLAPSED]


def test_divergence_a_decelerating_rise_is_not_divergence_though_its_slope_is_positive() -> None:
    runs = _runs(lambda s, g: {"loss": 1.0 + np.log1p(g) + _noise(s, g, 0.001)})
    field = profile.profile(runs).fields["divergence"]
    assert field.ci_low is not None and field.ci_low > 0  # the last generations still rise, significantly
    assert field.verdict == NOT_COLLAPSED  # but at under half the early rate


def test_risk_a_flat_noisy_curve_collapses_under_no_definition() -> None:
    runs = _runs(lambda s, g: {"loss": 1.0 + _noise(s, g, 0.05)})
    assert _verdicts(runs, "risk_catastrophic", "risk_increase", "divergence") == [NOT_COLLAPSED] * 3


def test_one_run_gets_point_verdicts_and_the_slope_its_fit_interval() -> None:
    runs = _runs(lambda s, g: {"loss": 1.0 + 2 * g, "hallucination": 0.1 * g}, seeds=1)
    found = profile.profile(runs)
    assert found.fields["hallucination"].verdict == COLLAPSED
    assert "point verdict" in found.fields["hallucination"].significance
    assert found.fields["risk_catastrophic"].verdict == COLLAPSED
    assert found.fields["risk_catastrophic"].ci_low is None
    assert "point verdict" in found.fields["risk_catastrophic"].significance
    assert found.fields["divergence"].verdict == COLLAPSED and found.fields["divergence"].ci_low is not None


def test_too_short_runs_leave_divergence_not_measurable() -> None:
    runs = {0: [_record(0, {"loss": 1.0}), _record(1, {"loss": 2.0})]}
    field = profile.profile(runs).fields["divergence"]
    assert field.verdict == NOT_MEASURABLE and "at least 3" in field.measure


# ------------------------------------------------------------ sample measures
def test_variance_collapses_when_the_spread_falls_by_more_than_the_threshold() -> None:
    shrinking = _runs(lambda s, g: {"loss": 1.0, "variance_ratio": 0.9 * 0.9**g + _noise(s, g)})
    steady = _runs(lambda s, g: {"loss": 1.0, "variance_ratio": 0.9 * 0.99**g + _noise(s, g)})
    assert _verdicts(shrinking, "variance") == [COLLAPSED]
    assert _verdicts(steady, "variance") == [NOT_COLLAPSED]  # a 10% fall over 10 generations: below the threshold


def test_variance_parts_each_can_collapse_it() -> None:
    runs = _runs(lambda s, g: {"loss": 1.0, "variance_ratio": 1.0 + _noise(s, g),
                               "pixel_variance_ratio": 1.0 - 0.05 * g + _noise(s, g)})
    field = profile.profile(runs).fields["variance"]
    assert field.verdict == COLLAPSED and [p.measure for p in field.parts] == ["variance_ratio", "pixel_variance_ratio"]


def test_modes_collapse_on_lost_coverage_or_on_mixing() -> None:
    lost = _runs(lambda s, g: {"loss": 1.0, "mode_coverage": 1.0 - 0.05 * g + _noise(s, g)})
    mixed = _runs(lambda s, g: {"loss": 1.0, "mode_coverage": 1.0 + _noise(s, g), "mode_mixing": 0.02 * g})
    kept = _runs(lambda s, g: {"loss": 1.0, "mode_coverage": 1.0 + _noise(s, g), "mode_mixing": 0.1 + _noise(s, g)})
    assert _verdicts(lost, "modes") == [COLLAPSED]
    assert _verdicts(mixed, "modes") == [COLLAPSED]
    assert _verdicts(kept, "modes") == [NOT_COLLAPSED]


def test_tails_collapse_when_the_rare_stratum_degrades_faster() -> None:
    faster = _runs(lambda s, g: {"loss": 1.0 + g, "tail_loss": 1.0 + 2 * g + _noise(s, g), "common_loss": 1.0 + g})
    alike = _runs(lambda s, g: {"loss": 1.0 + g, "tail_loss": 2.0 + 2 * g + _noise(s, g), "common_loss": 1.0 + g})
    assert _verdicts(faster, "tails") == [COLLAPSED]
    assert _verdicts(alike, "tails") == [NOT_COLLAPSED]


def test_hallucination_collapses_on_a_material_rise_of_the_share() -> None:
    rising = _runs(lambda s, g: {"loss": 1.0, "hallucination": 0.1 + 0.03 * g + _noise(s, g)})
    small = _runs(lambda s, g: {"loss": 1.0, "hallucination": 0.1 + 0.003 * g + _noise(s, g, 0.001)})
    assert _verdicts(rising, "hallucination") == [COLLAPSED]
    assert _verdicts(small, "hallucination") == [NOT_COLLAPSED]  # significant, but below 0.05


def test_measures_a_task_does_not_record_are_not_measurable() -> None:
    found = profile.profile(_runs(lambda s, g: {"loss": 1.0 + g}))
    for name in ("variance", "modes", "tails", "hallucination", "scaling_law"):
        assert found.fields[name].verdict == NOT_MEASURABLE
    assert found.as_dict()["tails"]["rule"].startswith("not measurable")


# ------------------------------------------------------------- scaling law
def test_scaling_law_from_the_committed_experiment_and_a_parallel_one() -> None:
    field = profile.profile(_runs(lambda s, g: {"loss": 1.0}), "linear_regression", "replace").fields["scaling_law"]
    assert field.verdict == COLLAPSED and field.ci_low is not None and field.ci_low > 0
    sizes = [256, 512, 1024, 2048]
    parallel = {"T": sizes, "simulated": {"0": [[t**-1.0, 0.0] for t in sizes],
                                          "4": [[3 * t**-1.0 * (1 + 0.01 * (-1) ** i), 0.0] for i, t in enumerate(sizes)]}}
    assert profile.scaling_law_field(parallel).verdict == NOT_COLLAPSED
    other = profile.profile(_runs(lambda s, g: {"loss": 1.0}), "linear_regression", "accumulate")
    assert other.fields["scaling_law"].verdict == NOT_MEASURABLE
    for task in ("mnist_vae", "no-such-task"):
        field = profile.profile(_runs(lambda s, g: {"loss": 1.0}), task, "replace").fields["scaling_law"]
        assert field.verdict == NOT_MEASURABLE and "no scaling-law experiment" in field.measure


# --------------------------------------------- regression measures, smoke preset
def _model(task: LinearRegressionTask) -> np.ndarray:
    return task.fit(task.real_pool(), task.default_fit_options(), np.random.default_rng(0)).model


def test_regression_variance_ratio_falls_for_a_shrunk_generator() -> None:
    task = LinearRegressionTask("smoke")
    model = _model(task)
    shrunk = np.stack([model[0], 0.3 * model[1]])
    assert task.evaluate(shrunk)["variance_ratio"] < 0.5 * task.evaluate(model)["variance_ratio"]
    assert 0.8 < task.evaluate(model)["variance_ratio"] < 1.5
    assert task.evaluate(model)["label_noise_ratio"] >= 1.0  # sigma0^2 = sigma^2, plus the fit's error


def test_regression_tails_only_for_power_spectra_and_a_dropped_tail_reads_as_tail_loss() -> None:
    assert "tail_loss" not in LinearRegressionTask("smoke").evaluate(_model(LinearRegressionTask("smoke")))
    task = LinearRegressionTask("smoke", {"spectrum": "power", "dim": 8})
    model = _model(task)
    tail, common = measures.strata(task.setting.eigenvalues)
    assert list(tail) == [6, 7] and list(common) == [0, 1]
    # a model whose error along the rarely excited directions triples (zeroing them would not do: there
    # the signal ||w*||_Sigma is far below the fit's noise, so a zero tail is closer to the truth)
    worse = model.copy()
    w_star = task._data.w_star
    worse[..., tail] = w_star[..., tail] + 3 * (model[..., tail] - w_star[..., tail])
    base, tails_worse = task.evaluate(model), task.evaluate(worse)
    assert tails_worse["tail_loss"] == pytest.approx(9 * base["tail_loss"])
    assert tails_worse["common_loss"] == pytest.approx(base["common_loss"])


def _curve_runs(task: LinearRegressionTask, strategy: str, seeds: Sequence[int], tmp_path) -> dict[int, list[dict]]:
    runs = {}
    for seed in seeds:
        spec = RunSpec(task, registry.make_strategy(strategy), seed=seed, generations=3, root=tmp_path / strategy)
        runs[seed] = execute(spec, progress=False).records
    return runs


def test_regression_smoke_runs_profile_replace_against_real_only(tmp_path) -> None:
    """Replace's risk rises on every seed; real-only's does not (the verdict flips)."""
    task = LinearRegressionTask("smoke")
    replace = profile.profile(_curve_runs(task, "replace", range(4), tmp_path), "linear_regression", "replace")
    real = profile.profile(_curve_runs(task, "real-only", range(4), tmp_path), "linear_regression", "real-only")
    assert replace.fields["risk_increase"].verdict == COLLAPSED
    assert real.fields["risk_increase"].verdict == NOT_COLLAPSED
    assert replace.fields["scaling_law"].verdict == COLLAPSED
    assert real.fields["hallucination"].verdict == NOT_MEASURABLE
    assert set(replace.as_dict()) == {"seeds", *profile.DEFINITIONS}


def test_report_export_and_board_rows_carry_the_profile(tmp_path) -> None:
    from collapselab.engine.rundir import find_runs
    from collapselab.leaderboard import aggregate
    from collapselab.operations.results import export
    from collapselab.scoring.report import build_report

    task = LinearRegressionTask("smoke")
    runs = _curve_runs(task, "replace", range(3), tmp_path / "runs")
    text, files = build_report(find_runs([tmp_path / "runs"]), tmp_path / "report")
    assert "collapse profile" in text and "risk_catastrophic" in text
    summary = next(f for f in files if f.suffix == ".json").read_text()
    assert '"profile"' in summary and '"divergence"' in summary

    table = export.export([tmp_path / "runs"], tmp_path / "profile.csv", "csv", collapse_profile=True)
    assert len(table) == (1 + 3) * len(profile.DEFINITIONS)
    entry = table[(table.scope == "seeds") & (table.definition == "risk_increase")].iloc[0]
    assert entry.verdict == COLLAPSED and entry.seeds == "0,1,2" and entry.ci_low > 1

    section = {"generations": 3, "runs": [{"seed": run.seed, "manifest": as_json(run.manifest),
                                           "records": [as_json(r) for r in run.records]} for run in find_runs([tmp_path / "runs"])]}
    row = aggregate.task_row(section, None)
    assert row["profile"]["risk_increase"]["verdict"] == COLLAPSED
    assert row["profile"] == profile.profile(runs, "linear_regression", "replace").as_dict()
