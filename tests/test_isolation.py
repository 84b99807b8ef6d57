"""Strategy code runs in its own process, forked afresh each generation from a clean template:
whatever a hostile or careless plugin does there (patch the task, dig for the evaluator or the
provenance ledger, keep state in globals, use global RNGs, fork, change directory, leave threads,
ignore its time limit) fails with one clear error or leaves the numbers as they would be."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collapselab import Pool
from collapselab.contracts import registry
from collapselab.engine import sandbox
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import PluginError
from tests.helpers import metric_curves, run_strategy

HEADER = "import os, random, signal, sys, threading, time\nimport numpy as np\nfrom collapselab import Strategy, Pool\n\n"
TASK = "linear_regression"


def plugin(tmp_path: Path, body: str, cls: str = "Hostile") -> str:
    path = tmp_path / "hostile.py"
    path.write_text(HEADER + body)
    return f"{path}:{cls}"


def replace_curves(tmp_path: Path, generations: int = 3) -> list[dict[str, float]]:
    return metric_curves(run_strategy(tmp_path / "replace", TASK, "replace", generations=generations))


def test_a_patch_at_import_never_reaches_the_evaluator(tmp_path):
    spec = plugin(tmp_path, (
        "from collapselab.tasks.linear_regression.task import LinearRegressionTask\n"
        "LinearRegressionTask.evaluate = lambda self, model: {'loss': 1e-9}\n\n"
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n        return ctx.latest\n"))
    from collapselab.tasks.linear_regression.task import LinearRegressionTask

    original = LinearRegressionTask.evaluate
    run = run_strategy(tmp_path / "runs", TASK, spec, generations=3)
    assert LinearRegressionTask.evaluate is original
    assert metric_curves(run) == replace_curves(tmp_path)


def test_a_patch_in_a_hook_has_no_effect(tmp_path):
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n"
        "        from collapselab.tasks.linear_regression import task\n"
        "        task.LinearRegressionTask.evaluate = lambda self, model: {'loss': 1e-9}\n"
        "        return ctx.latest\n"))
    assert metric_curves(run_strategy(tmp_path / "runs", TASK, spec, generations=3)) == replace_curves(tmp_path)


def test_the_task_cannot_be_reached_through_a_hook(tmp_path):
    """In the run's process ``ctx._hooks.reward.__self__`` was the task, evaluator and test data included."""
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n"
        "        task = getattr(ctx._hooks.reward, '__self__', None)\n"
        "        if task is not None and hasattr(task, 'evaluate'):\n"
        "            raise RuntimeError('reached the task')\n"
        "        cells = [c.cell_contents for c in (ctx._hooks.reward.__closure__ or ())]\n"
        "        if any(hasattr(c, 'evaluate') for c in cells):\n"
        "            raise RuntimeError('reached the task through a closure')\n"
        "        return ctx.latest\n"))
    assert metric_curves(run_strategy(tmp_path / "runs", TASK, spec, generations=3)) == replace_curves(tmp_path)


def test_the_ledger_cannot_be_reached_to_register_forged_real_items(tmp_path):
    spec = plugin(tmp_path, (
        "def _find(obj, seen, depth=0):\n"
        "    if id(obj) in seen or depth > 6:\n        return None\n"
        "    seen.add(id(obj))\n"
        "    if type(obj).__name__ == 'Ledger':\n        return obj\n"
        "    for cell in getattr(obj, '__closure__', None) or ():\n"
        "        found = _find(cell.cell_contents, seen, depth + 1)\n"
        "        if found is not None:\n            return found\n"
        "    for value in list(getattr(obj, '__dict__', {}).values()):\n"
        "        found = _find(value, seen, depth + 1)\n"
        "        if found is not None:\n            return found\n"
        "    return None\n\n"
        "class Hostile(Strategy):\n    name = 'hostile'\n    requires_hooks = ('correct',)\n\n"
        "    def training_pool(self, ctx):\n"
        "        forged = Pool({'row': ctx.real['row'], 'y': ctx.real['y'] * 0.0}, -1, replicas=ctx.real.replicas)\n"
        "        ledger = _find(ctx._hooks.correct, set())\n"
        "        if ledger is not None:\n            ledger.add(-1, forged, keep=True)\n"
        "        return forged\n"))
    with pytest.raises(PluginError, match="marked real that are not real items the loop produced"):
        run_strategy(tmp_path / "runs", TASK, spec, generations=2)


@pytest.mark.parametrize("where", ["module", "class"])
def test_state_in_module_globals_or_class_attributes_does_not_survive_a_generation(tmp_path, where):
    holder = "CALLS" if where == "module" else "Hostile.calls"
    spec = plugin(tmp_path, (
        "CALLS = [0]\n\n"
        "class Hostile(Strategy):\n    name = 'hostile'\n    calls = [0]\n\n"
        "    def training_pool(self, ctx):\n"
        f"        {holder}[0] += 1\n"
        f"        return ctx.latest if {holder}[0] == 1 else ctx.accumulated()\n"))
    straight = run_strategy(tmp_path / "a", TASK, spec, generations=3)
    run_strategy(tmp_path / "b", TASK, spec, generations=1)
    resumed = run_strategy(tmp_path / "b", TASK, spec, generations=3)
    assert metric_curves(resumed) == metric_curves(straight)
    assert all(r.composition.real == 0 for r in straight.records[1:])  # every generation is a first call


def test_global_random_generators_are_seeded_from_the_generation(tmp_path):
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def curate(self, ctx, samples):\n"
        "        keep = np.random.permutation(len(samples))[: len(samples) // 2 + random.randrange(3)]\n"
        "        return samples.subset(np.sort(keep))\n\n"
        "    def training_pool(self, ctx):\n        return ctx.latest\n"))
    first = run_strategy(tmp_path / "a", TASK, spec, generations=3)
    second = run_strategy(tmp_path / "b", TASK, spec, generations=3)
    assert metric_curves(first) == metric_curves(second)
    assert [r.composition for r in first.records] == [r.composition for r in second.records]


def test_a_forked_process_cannot_finish_the_run_and_is_killed(tmp_path):
    marker = tmp_path / "forked.pid"
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        f"            open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "            time.sleep(0.2)\n"
        "            return ctx.accumulated()\n"
        "        time.sleep(0.5)\n"
        "        return ctx.latest\n"))
    run = run_strategy(tmp_path / "runs", TASK, spec, generations=2)
    assert metric_curves(run) == replace_curves(tmp_path, generations=2)
    assert run.manifest.status == "complete"
    forked = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(forked, 0)


def test_changing_directory_in_a_hook_leaves_the_run_where_it_is(tmp_path):
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n        os.chdir('/')\n        return ctx.latest\n"))
    before = os.getcwd()
    run = run_strategy(tmp_path / "runs", TASK, spec, generations=2)
    assert os.getcwd() == before
    assert run.manifest.status == "complete"
    assert run.path.is_relative_to(tmp_path / "runs")


def test_threads_a_hook_leaves_behind_end_with_its_generation(tmp_path):
    ticks = tmp_path / "ticks"
    spec = plugin(tmp_path, (
        "TICKED = threading.Event()\n\n"
        "def _tick():\n"
        "    while True:\n"
        f"        open({str(ticks)!r}, 'a').write('.')\n"
        "        TICKED.set()\n"
        "        time.sleep(0.01)\n\n"
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n"
        "        threading.Thread(target=_tick, daemon=False).start()\n"
        "        TICKED.wait(5)  # the thread is running before the hook returns\n"
        "        return ctx.latest\n"))
    run = run_strategy(tmp_path / "runs", TASK, spec, generations=2)
    assert metric_curves(run) == replace_curves(tmp_path, generations=2)
    size = ticks.stat().st_size
    time.sleep(0.3)
    assert ticks.stat().st_size == size


def test_a_hook_that_ignores_the_alarm_still_meets_its_time_limit(tmp_path):
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n"
        "        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        time.sleep(120)\n        return ctx.latest\n"))
    run = RunSpec(registry.make_task(TASK, "smoke"), sandbox.describe(spec), 0, 2, tmp_path / "runs",
                  strategy_spec=spec, command=["pytest"], hook_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(PluginError, match="ran longer than the hook time limit of 0.5 s"):
        execute(run, progress=False)
    assert time.monotonic() - started < 60  # killed, not waited for


def test_a_hook_that_kills_its_own_process_is_a_plugin_error_naming_the_hook(tmp_path):
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def curate(self, ctx, samples):\n        os.kill(os.getpid(), signal.SIGKILL)\n\n"
        "    def training_pool(self, ctx):\n        return ctx.latest\n"))
    with pytest.raises(PluginError, match=r"its process was killed by signal SIGKILL in curate\(\) at generation 1"):
        run_strategy(tmp_path / "runs", TASK, spec, generations=2)


def test_a_plugin_is_never_imported_by_the_run_process(tmp_path):
    marker = tmp_path / "imported-in"
    spec = plugin(tmp_path, (
        f"open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n\n"
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n        return ctx.latest\n"))
    run_strategy(tmp_path / "runs", TASK, spec, generations=2)
    assert str(os.getpid()) not in marker.read_text().split()


def test_self_correction_theory_is_the_same_after_a_resume(tmp_path):
    """Which origins the task's expert changed is part of the run's records, not of a process."""
    straight = run_strategy(tmp_path / "a", TASK, "self-correct", generations=3)
    run_strategy(tmp_path / "b", TASK, "self-correct", generations=1)
    resumed = run_strategy(tmp_path / "b", TASK, "self-correct", generations=3)
    assert metric_curves(resumed) == metric_curves(straight)
    assert all(r.corrected == [r.generation] for r in straight.records[1:])
    assert all("theory_loss" not in r.metrics for r in straight.records[1:])


def test_a_forged_lineage_trains_on_the_items_it_names_not_the_forged_ones(tmp_path):
    """A pool whose recipe claims it is a selection of the real pool crosses as that recipe: the run rebuilds
    it from its own real pool, so the made-up labels never reach a fit."""
    spec = plugin(tmp_path, (
        "class Hostile(Strategy):\n    name = 'hostile'\n\n"
        "    def training_pool(self, ctx):\n"
        "        forged = Pool({'row': ctx.real['row'], 'y': ctx.real['y'] * 0.0}, -1, replicas=ctx.real.replicas)\n"
        "        claimed = type(ctx.real.lineage)((ctx.real,), np.arange(len(ctx.real)))\n"
        "        object.__setattr__(forged, '_lineage', claimed)\n"
        "        return forged\n"))
    run = run_strategy(tmp_path / "runs", TASK, spec, generations=2)
    real_only = run_strategy(tmp_path / "real-only", TASK, "real-only", generations=2)
    assert metric_curves(run) == metric_curves(real_only)


def test_pools_the_run_rebuilds_from_its_own_need_no_digests(tmp_path, monkeypatch):
    """Accumulating and subsampling the history hash nothing in the run's process; a pool of made-up items
    is still hashed and refused (test_plugins)."""
    hashed = []
    original = Pool.row_digests
    monkeypatch.setattr(Pool, "row_digests", lambda pool, key: hashed.append(len(pool)) or original(pool, key))
    for strategy in ("accumulate", "accumulate-subsample", "replace"):
        run_strategy(tmp_path / strategy, TASK, strategy, generations=3)
    assert hashed == []
