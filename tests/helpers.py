"""Small helpers shared by the tests (run a strategy into a temporary folder, start and watch sweeps,
compare re-run numbers with published ones)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.engine import sandbox
from collapselab.engine.loop import RunSpec, execute
from collapselab.engine.rundir import Run, load_run
from collapselab.operations.publishing import reproduce
from tests import sweep_plugins

#: How far a number re-computed on another BLAS kernel, thread count or library version may be from
#: the published one, relative to it. Kernels differ in the last bits of float64 results: about
#: 2e-14 between OpenBLAS's Haswell and SkylakeX kernels on the committed regression curves.
CROSS_KERNEL_RTOL = 1e-12


def run_strategy(
    root: Path,
    task: str,
    strategy: str,
    seed: int = 0,
    generations: int | None = None,
    preset: str = "smoke",
    overrides: dict[str, Any] | None = None,
    listeners: tuple = (),
) -> Run:
    task_obj = registry.make_task(task, preset, overrides or {})
    spec = RunSpec(
        task_obj,
        sandbox.describe(strategy),  # as the command line does: plugin code runs only in its own process
        seed,
        task_obj.default_generations if generations is None else generations,
        Path(root),
        strategy_spec=strategy,
        command=["pytest"],
    )
    return execute(spec, listeners, progress=False)


def metric_curves(run: Run) -> list[dict[str, float]]:
    """Every generation's metrics (timings excluded): what determinism and resume compare."""
    return [record.metrics for record in run.records]


def assert_matches_published(published: Mapping[str, Any], rerun: Run) -> None:
    """Every metric of ``rerun`` equals the ``published`` run's (a run of a submission, same seed):
    bit for bit where both recorded the same BLAS kernel and threads (:func:`reproduce.same_kernel`,
    the one place that decides it), else within :data:`CROSS_KERNEL_RTOL`."""
    assert int(published["seed"]) == rerun.seed
    exact = reproduce.same_kernel([published], [rerun])
    ours, theirs = metric_curves(rerun), [record["metrics"] for record in published["records"]]
    assert len(ours) == len(theirs), f"seed {rerun.seed}: {len(ours)} generations re-run, {len(theirs)} published"
    for generation, (mine, recorded) in enumerate(zip(ours, theirs)):
        assert set(mine) == set(recorded), f"seed {rerun.seed}, generation {generation}: other metrics"
        for metric, value in recorded.items():
            where = f"seed {rerun.seed}, generation {generation}, {metric}"
            if exact:
                assert mine[metric] == value, f"{where}: {mine[metric]!r} != {value!r} on the same kernel and threads"
            else:
                np.testing.assert_allclose(mine[metric], value, rtol=CROSS_KERNEL_RTOL, atol=0, err_msg=where)


PLUGIN_FILE = Path(__file__).with_name("sweep_plugins.py")


def sweep_process(args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    """``collapselab sweep ARGS`` in a process of its own (the command a user types)."""
    command = [str(Path(sys.executable).with_name("collapselab")), "sweep", *args, "--no-progress"]
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 90.0) -> Path:
    """Wait for ``path`` to appear while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"{path} did not appear; the process ended with {process.returncode}: {process.communicate()}")
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)
    return path


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its new parent to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def straight_metrics(tmp_path: Path, task: str, spec: str, seeds: tuple[int, ...] = (0,)) -> dict[int, list[dict[str, float]]]:
    """The metrics of uninterrupted local sweep runs of ``spec`` (smoke preset; its interrupting flag already exists)."""
    from collapselab.operations.execution import sweep

    jobs, outcome = sweep.sweep([task], [spec], list(seeds), "smoke", None, tmp_path / "straight", progress=False)
    assert outcome.ok
    return {job.seed: metric_curves(load_run(job.path)) for job in jobs}


SLOW_PLUGIN = '''
import os, signal, time
from pathlib import Path
from collapselab import Strategy
''' + inspect.getsource(sweep_plugins.parent_of) + inspect.getsource(sweep_plugins.run_process_pid) + '''

class Slow(Strategy):
    """Accumulate, but at generation SLOW_GENERATION (default 2) touch SLOW_MARKER and sleep
    SLOW_SECONDS (default 60), or with HARD_EXIT set kill its run's process (SIGKILL: no chance to record)."""
    name = "slow"

    def training_pool(self, ctx):
        marker = os.environ.get("SLOW_MARKER")
        at = int(os.environ.get("SLOW_GENERATION", "2"))
        if marker and ctx.generation == at:
            Path(marker).touch()
            time.sleep(float(os.environ.get("SLOW_SECONDS", "60")))
        if os.environ.get("HARD_EXIT") and ctx.generation == at:
            os.kill(run_process_pid(), signal.SIGKILL)
        return ctx.accumulated()
'''


def slow_plugin(tmp_path: Path) -> str:
    """The spec of :data:`SLOW_PLUGIN` written to ``tmp_path/slow.py``."""
    path = tmp_path / "slow.py"
    path.write_text(SLOW_PLUGIN)
    return f"{path}:Slow"
