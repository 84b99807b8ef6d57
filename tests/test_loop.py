"""The generation loop: determinism, resume after interruption or kill, extension, conflicts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from collapselab.contracts.registry import make_strategy
from collapselab.engine import rundir as results
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import RunConflictError, TaskError
from collapselab.formats import records
from collapselab.tasks.linear_regression import LinearRegressionTask
from tests.helpers import metric_curves, run_strategy, slow_plugin


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    a = run_strategy(tmp_path / "a", "linear_regression", "accumulate-subsample", seed=3)
    b = run_strategy(tmp_path / "b", "linear_regression", "accumulate-subsample", seed=3)
    c = run_strategy(tmp_path / "c", "linear_regression", "accumulate-subsample", seed=4)
    assert metric_curves(a) == metric_curves(b)
    assert metric_curves(a)[1:] != metric_curves(c)[1:]
    assert (a.path / "pools" / "gen-0003.npz").read_bytes() == (b.path / "pools" / "gen-0003.npz").read_bytes()


class Interrupt:
    """A listener that raises KeyboardInterrupt once generation ``after`` is written."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, run_dir, manifest, record):
        if record.generation == self.after:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_with_identical_numbers(tmp_path):
    reference = run_strategy(tmp_path / "ref", "linear_regression", "mix", generations=6)
    with pytest.raises(KeyboardInterrupt):
        run_strategy(tmp_path / "cut", "linear_regression", "mix", generations=6, listeners=(Interrupt(2),))
    stopped = results.load_run(reference.path.parents[4] / "cut" / reference.path.relative_to(tmp_path / "ref"))
    assert stopped.manifest.status == "interrupted"
    assert stopped.manifest.error.type == "KeyboardInterrupt"
    assert len(stopped.records) == 3
    resumed = run_strategy(tmp_path / "cut", "linear_regression", "mix", generations=6)
    assert resumed.complete
    assert metric_curves(resumed) == metric_curves(reference)


def test_extending_a_finished_run_equals_running_longer_at_once(tmp_path):
    short = run_strategy(tmp_path / "x", "linear_regression", "accumulate", generations=2)
    assert len(short.records) == 3
    extended = run_strategy(tmp_path / "x", "linear_regression", "accumulate", generations=5)
    straight = run_strategy(tmp_path / "y", "linear_regression", "accumulate", generations=5)
    assert metric_curves(extended) == metric_curves(straight)
    assert extended.manifest.generations == 5


def test_killed_process_resumes_with_identical_numbers(tmp_path):
    spec = slow_plugin(tmp_path)
    command = [sys.executable, "-m", "collapselab", "run", "--task", "linear_regression", "--strategy", spec,
               "--preset", "smoke", "--generations", "5", "--no-progress", "--report-dir", str(tmp_path / "rep")]
    marker = tmp_path / "marker"
    env = {**os.environ, "SLOW_MARKER": str(marker), "SLOW_GENERATION": "3"}
    process = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the run never reached generation 3"
    process.send_signal(signal.SIGKILL)
    process.wait()
    (run_dir,) = results.find_runs([tmp_path / "killed"])
    assert run_dir.manifest.status == "running"  # killed without a chance to say so
    assert 1 <= len(run_dir.records) <= 3  # what the last checkpoint made durable
    env.pop("SLOW_MARKER")
    for out in ("killed", "straight"):
        subprocess.run([*command, "--out", str(tmp_path / out)], env=env, check=True, capture_output=True)
    (resumed,) = results.find_runs([tmp_path / "killed"])
    (straight,) = results.find_runs([tmp_path / "straight"])
    assert resumed.complete and len(resumed.records) == 6
    assert metric_curves(resumed) == metric_curves(straight)


def test_resume_refuses_changed_strategy_code(tmp_path):
    """A run directory made by other code of the same strategy (a registered strategy edited in place:
    its folder name does not change) is refused, not resumed. An edited strategy *file* gets a folder
    of its own instead (tests/test_plugins.py)."""
    first = run_strategy(tmp_path, "linear_regression", "replace", generations=1)
    manifest = results.read_manifest(first.path)
    manifest.strategy.source_sha256 = "0" * 64  # as if made before an edit of the strategy's code
    results.write_manifest(first.path, manifest)
    with pytest.raises(RunConflictError, match="strategy source"):
        run_strategy(tmp_path, "linear_regression", "replace", generations=2)


class DivergingTask(LinearRegressionTask):
    """Regression whose evaluation turns NaN at generation 2, as a diverged training would."""

    name = "diverging_regression"
    calls = 0

    def evaluate(self, model):
        metrics = super().evaluate(model)
        DivergingTask.calls += 1
        return {**metrics, "loss": float("nan")} if DivergingTask.calls == 3 else metrics


def test_nan_loss_stops_with_a_clear_error_and_keeps_earlier_generations(tmp_path):
    spec = RunSpec(DivergingTask("smoke"), make_strategy("replace"), 0, 4, tmp_path, command=["pytest"])
    with pytest.raises(TaskError, match="metric 'loss' is nan at generation 2"):
        execute(spec, progress=False)
    run = results.load_run(spec.directory)
    assert run.manifest.status == "failed"
    assert run.manifest.error.generation == 2
    assert [r.generation for r in run.records] == [0, 1]


def test_run_directory_layout_and_manifest(tmp_path):
    run = run_strategy(tmp_path, "linear_regression", "mix[real_fraction=0.25]", seed=2, overrides={"dim": 4})
    relative = run.path.relative_to(tmp_path)
    assert relative.parts[0] == "linear_regression"
    assert relative.parts[1].startswith("mix-")
    assert relative.parts[2].startswith("smoke-")  # --set changed the configuration
    assert relative.parts[3] == "seed-2"
    manifest = run.manifest
    assert manifest.schema_version == records.SCHEMA_VERSION
    assert manifest.task.config["dim"] == 4
    assert manifest.strategy.params == {"real_fraction": 0.25}
    assert len(manifest.strategy.source_sha256 or "") == 64
    assert manifest.environment["python"] and manifest.environment["cpu_count"]
    assert manifest.environment["blas_kernel"].startswith("openblas")
    assert manifest.task.data["generator"]
    assert sorted(p.name for p in (run.path / "pools").iterdir()) == [f"gen-{g:04d}.npz" for g in (1, 2, 3)]
    assert sorted(p.name for p in (run.path / "models").iterdir()) == ["gen-0000.model", "gen-0003.model"]
    for record in run.records:
        assert set(records.as_json(record)) >= {"generation", "metrics", "composition", "compute", "seconds"}


def test_generation_0_is_fitted_once_per_seed_and_shared_by_every_strategy(tmp_path):
    """M_0 does not depend on the strategy: the second strategy of a seed under one runs root copies the
    first one's M_0 (its record says ``shared``) and computes the same numbers as with its own fit."""
    first = run_strategy(tmp_path / "shared", "mnist_vae", "replace", generations=1)
    second = run_strategy(tmp_path / "shared", "mnist_vae", "accumulate", generations=1)
    alone = run_strategy(tmp_path / "alone", "mnist_vae", "accumulate", generations=1)
    assert not first.records[0].shared and second.records[0].shared and not alone.records[0].shared
    assert metric_curves(second) == metric_curves(alone) and second.records[0].metrics == first.records[0].metrics
    assert [r.compute for r in second.records] == [r.compute for r in alone.records]
    model = "models/gen-0000.model"
    assert second.records[0].checksums[model] == alone.records[0].checksums[model] == first.records[0].checksums[model]
