"""The contract suite: every registered task with every applicable shipped baseline, at the smoke preset.

A new task or baseline is covered as soon as it is registered (entry points), without editing
this file: completion, identical resume after an interruption, fits that spend exactly the step
budget, save/load round trips, deterministic evaluation, a validation loss read without the test
split, the fresh-real reserve, and clear refusals where a baseline cannot run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collapselab.contracts import registry
from collapselab.contracts.pool import REAL
from collapselab.contracts.task import TaskDescription
from collapselab.engine import rundir, sandbox
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import PluginError
from collapselab.leaderboard.baselines import shipped
from collapselab.operations.sweep import inapplicable_reason
from tests.helpers import metric_curves

TASKS = registry.task_names()
BASELINES = shipped()
GENERATIONS = 2


def _task(name: str):
    return registry.make_task(name, "smoke")


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for task in TASKS:
        for strategy in BASELINES:
            pairs.append((task, strategy))
    return pairs


class StopAfter:
    """A listener that interrupts the run (like Ctrl-C) once generation ``after`` is computed."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, run_dir, manifest, record) -> None:
        if record["generation"] == self.after:
            raise KeyboardInterrupt


def _run(task_name: str, strategy: str, root: Path, listeners=()):
    spec = RunSpec(_task(task_name), sandbox.describe(strategy), 0, GENERATIONS, root, strategy_spec=strategy,
                   command=["pytest"], checkpoint_seconds=0.0)
    return execute(spec, listeners, progress=False)


@pytest.mark.parametrize("task_name,strategy", _pairs())
def test_every_baseline_completes_and_resumes_identically(task_name, strategy, tmp_path):
    task = _task(task_name)
    reason = inapplicable_reason(task, sandbox.describe(strategy))
    if reason is not None:
        with pytest.raises(PluginError) as refusal:
            registry.make_strategy(strategy).check_task(task.describe())
        assert strategy in str(refusal.value) or task_name in str(refusal.value) or "reserve" in reason
        pytest.skip(f"not applicable: {reason}")
    straight = _run(task_name, strategy, tmp_path / "straight")
    assert straight.complete and len(straight.records) == GENERATIONS + 1
    for record in straight.records:
        assert all(np.isfinite(v) for v in record["metrics"].values())
        for name in record["artifacts"]:
            assert (straight.path / name).is_file()
    with pytest.raises(KeyboardInterrupt):
        _run(task_name, strategy, tmp_path / "cut", listeners=(StopAfter(1),))
    cut = rundir.load_run(next((tmp_path / "cut").rglob(rundir.MANIFEST)).parent)
    assert cut.manifest["status"] == "interrupted" and len(cut.records) == 2
    resumed = _run(task_name, strategy, tmp_path / "cut")
    assert metric_curves(resumed) == metric_curves(straight)
    assert [r["compute"] for r in resumed.records] == [r["compute"] for r in straight.records]


@pytest.mark.parametrize("task_name", TASKS)
def test_description_is_read_only_and_holds_no_data(task_name):
    description = _task(task_name).describe()
    assert isinstance(description, TaskDescription)
    with pytest.raises(TypeError):
        description.config["generations"] = 99  # type: ignore[index]
    assert set(description.hooks) <= {"verify", "correct", "reward", "features", "fresh_real_pool"}


@pytest.mark.parametrize("task_name", TASKS)
def test_fit_spends_exactly_the_budget_whatever_the_pool_size(task_name):
    """Every task has a budget of examples per fit (steps x batch, or the closed-form examples) and
    spends exactly it on a pool smaller than, equal to and larger than the budget; asking for more
    through the fit options spends more, and says so."""
    task = _task(task_name)
    budget = task.example_budget
    assert budget is not None and task.describe().example_budget == budget
    real = task.real_pool()
    for pool in (real.subset(np.arange(3)), real, type(real).concat([real, real, real])):
        fitted = task.fit(pool, task.fit_options, np.random.default_rng(0))
        assert fitted.compute.examples == budget
        assert fitted.compute.steps == (task.step_budget or 0)
    knob = "steps" if task.step_budget is not None else "examples"
    more = task.fit(real, {**task.fit_options, knob: 2 * task.fit_options[knob]}, np.random.default_rng(0))
    assert more.compute.examples == 2 * budget


@pytest.mark.parametrize("task_name", TASKS)
def test_model_round_trip_and_deterministic_evaluation(task_name, tmp_path):
    task = _task(task_name)
    model = task.fit(task.real_pool(), task.fit_options, np.random.default_rng(1)).model
    first = task.evaluate(model)
    assert first == task.evaluate(model)
    task.save_model(model, tmp_path / "model")
    assert task.evaluate(task.load_model(tmp_path / "model")) == first
    again = task.fit(task.real_pool(), task.fit_options, np.random.default_rng(1)).model
    assert task.evaluate(again) == first


@pytest.mark.parametrize("task_name", TASKS)
def test_validation_is_read_without_the_test_door(task_name):
    """Every task offers model selection a validation loss: finite, deterministic, and available with
    ``evaluate`` (the only reader of the test split) locked."""
    task = _task(task_name)
    model = task.fit(task.real_pool(), task.fit_options, np.random.default_rng(1)).model
    published = task.evaluate(model)

    def locked(model):
        raise AssertionError("validate() went through evaluate()")

    task.evaluate = locked
    first = task.validate(model)
    assert np.isfinite(first["loss"]) and first == task.validate(model)
    assert first["loss"] != published["loss"]


@pytest.mark.parametrize("task_name", TASKS)
def test_fresh_real_data_come_from_the_reserve(task_name):
    task = _task(task_name)
    if "fresh_real_pool" not in task.hooks():
        pytest.skip("the task keeps no reserve")
    real = task.real_pool()
    fresh = task.fresh_real_pool(5, np.random.default_rng(0))
    assert len(fresh) == 5 and set(fresh.origin_counts()) == {REAL}
    key = np.random.default_rng(0).integers(0, 2**63, size=1 << 16, dtype=np.uint64)
    assert not np.isin(fresh.row_digests(key), real.row_digests(key)).any()


@pytest.mark.parametrize("task_name", TASKS)
def test_sampling_options_are_declared_and_used(task_name):
    task = _task(task_name)
    model = task.fit(task.real_pool(), task.fit_options, np.random.default_rng(0)).model
    samples = task.sample(model, 4, np.random.default_rng(0), task.sampling_options)
    assert len(samples) == 4 and samples.keys == task.real_pool().keys
