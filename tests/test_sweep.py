"""The sweep: parallel child processes with a fair thread share, skipping complete runs, resuming
unfinished ones with identical numbers, and carrying on past failures with a non-zero exit."""

from __future__ import annotations

import inspect
import os
import sys
import textwrap

import pytest

from collapselab.cli.main import main
from collapselab.contracts import registry
from collapselab.engine import rundir as results
from collapselab.errors import ParameterError
from collapselab.operations.execution import grid, jobs, sweep
from tests import sweep_plugins
from tests.helpers import PLUGIN_FILE, alive, metric_curves, straight_metrics, sweep_process, wait_for_file, wait_until_gone

TASK = "linear_regression"

PLUGINS = textwrap.dedent(
    """
    import os
    """) + inspect.getsource(sweep_plugins.parent_of) + inspect.getsource(sweep_plugins.run_process_pid) + textwrap.dedent(
    """

    from collapselab import Strategy
    from collapselab.errors import PluginError


    class Boom(Strategy):
        name = "boom"

        def training_pool(self, ctx):
            if ctx.generation == 2:
                raise RuntimeError("boom at generation two")
            return ctx.latest


    class ThreadShare(Strategy):
        name = "thread-share"

        def training_pool(self, ctx):
            found = os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS")
            wanted = os.environ["EXPECTED_THREADS"]
            if found != (wanted, wanted):
                raise RuntimeError(f"thread limits {found}, expected {wanted}")
            return ctx.latest


    class CrashOnce(Strategy):
        # accumulate, but its run's process is killed at generation 2 unless the flag file exists
        name = "crash-once"

        def training_pool(self, ctx):
            flag = os.environ["CRASH_FLAG"]
            if ctx.generation == 2 and not os.path.exists(flag):
                open(flag, "w").close()
                os.kill(run_process_pid(), 9)
            return ctx.accumulated()


    class Picky(Strategy):
        name = "picky"

        def check_task(self, task):
            raise PluginError("picky runs on no task")

        def training_pool(self, ctx):
            return ctx.latest
    """
)


def test_split_list_keeps_bracketed_parameters_together():
    assert sweep.split_list("mix[real_fraction=0.3,x=1], replace,,a.py:B[k=2]") == [
        "mix[real_fraction=0.3,x=1]", "replace", "a.py:B[k=2]"]


def test_each_child_gets_a_fair_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(jobs, "available_cpus", lambda: 8)
    assert jobs.thread_share(3) == 2 and jobs.thread_share(16) == 1 and jobs.thread_share(3, threads=4) == 4
    env = jobs.worker_environment({"PATH": "/bin"}, 2, visible_gpus="3")
    assert {env[k] for k in jobs.THREAD_VARIABLES} == {"2"}
    assert env["PYTHONSAFEPATH"] == "1" and env["CUDA_VISIBLE_DEVICES"] == "3" and env["PATH"] == "/bin"
    assert "CUDA_VISIBLE_DEVICES" not in jobs.worker_environment({}, 1)


def test_sweep_runs_in_parallel_skips_done_runs_and_reports_failures(tmp_path, monkeypatch, capsys):
    plugins = tmp_path / "plugins.py"
    plugins.write_text(PLUGINS)
    monkeypatch.setenv("EXPECTED_THREADS", str(max(1, jobs.available_cpus() // 2)))
    strategies = f"replace,{plugins}:Boom,{plugins}:ThreadShare,{plugins}:Picky"
    args = ["sweep", "--tasks", TASK, "--strategies", strategies, "--seeds", "0-1", "--preset", "smoke",
            "--jobs", "2", "--out", str(tmp_path / "runs"), "--no-progress"]

    assert main(args) == 1
    out = capsys.readouterr()
    assert "2 run(s) failed" in out.out
    boom = tmp_path / "runs" / TASK / f"boom-src{registry.file_sha256(plugins)[:8]}"  # a file strategy's folder names its source
    assert "boom at generation two" in out.out and str(boom / "smoke" / "seed-0" / "sweep.log") in out.out
    assert f"not applicable: {TASK} / {plugins}:Picky: picky runs on no task" in out.out
    finished = {(r.strategy_label, r.seed, r.manifest.status, len(r.records)) for r in results.find_runs([tmp_path / "runs"])}
    assert finished == {("replace", 0, "complete", 4), ("replace", 1, "complete", 4),
                        ("thread-share", 0, "complete", 4), ("thread-share", 1, "complete", 4),
                        ("boom", 0, "failed", 2), ("boom", 1, "failed", 2)}
    assert "done    linear_regression / replace / seed 1" in out.err

    assert main(args) == 1  # complete runs are skipped; the failing ones are retried and fail again
    table = capsys.readouterr().out
    replace_row = next(line for line in table.splitlines() if line.startswith(f"{TASK}  replace"))
    assert replace_row.split()[2:5] == ["0", "2", "0"]  # ran, already complete, failed
    boom_row = next(line for line in table.splitlines() if line.startswith(TASK) and ":Boom" in line)
    assert boom_row.split()[2:5] == ["0", "0", "2"]


def test_sweep_resumes_a_killed_run_to_the_same_numbers(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins.py"
    plugins.write_text(PLUGINS)
    spec = f"{plugins}:CrashOnce"
    monkeypatch.setenv("CRASH_FLAG", str(tmp_path / "crashed"))
    jobs, outcome = sweep.sweep([TASK], [spec], [0], "smoke", None, tmp_path / "runs", progress=False)
    assert [reason for _, reason in outcome.failed] == ["killed by signal 9 (SIGKILL)"]
    killed = results.load_run(jobs[0].path)
    assert killed.manifest.status == "running" and 1 <= len(killed.records) <= 2  # the last checkpoint

    jobs, outcome = sweep.sweep([TASK], [spec], [0], "smoke", None, tmp_path / "runs", progress=False)
    assert outcome.ok and outcome.completed == jobs
    resumed = results.load_run(jobs[0].path)
    jobs, outcome = sweep.sweep([TASK], [spec], [0], "smoke", None, tmp_path / "straight", progress=False)
    straight = results.load_run(jobs[0].path)
    assert len(resumed.records) == 4
    assert [r.metrics for r in resumed.records] == [r.metrics for r in straight.records]


def test_all_names_the_plugins_that_import():
    assert "linear_regression" in sweep.names("all", "task")
    assert {"replace", "accumulate", "fresh-real"} <= set(sweep.names("all", "strategy"))


def test_plan_names_each_run_directory_once(tmp_path):
    jobs, _ = sweep.plan([TASK], ["mix", "mix[real_fraction=0.5]", "mix[real_fraction=0.3]"], [0, 1], "smoke", None, tmp_path)
    assert [(job.strategy, job.seed) for job in jobs] == [
        ("mix", 0), ("mix", 1), ("mix[real_fraction=0.3]", 0), ("mix[real_fraction=0.3]", 1)]
    assert len({job.directory for job in jobs}) == 4


def test_leaderboard_seeds_are_each_tasks_own(tmp_path):
    """``--seeds leaderboard`` plans the seeds every entry must report: 0-9 on the regression task, 0-2 on a
    neural one, so one sweep makes a complete submission."""
    from collapselab.operations.execution.launchers import LauncherSettings

    jobs, _ = sweep.plan([TASK, "mnist_vae"], ["replace"], None, "smoke", None, tmp_path)
    seeds = {task: [job.seed for job in jobs if job.task == task] for task in (TASK, "mnist_vae")}
    assert seeds == {TASK: list(range(registry.task_class(TASK).leaderboard_seeds)), "mnist_vae": [0, 1, 2]}
    assert registry.task_class(TASK).leaderboard_seeds == 10
    shown = sweep.describe(jobs, [], LauncherSettings(parallel=1).build(tmp_path))
    assert shown.startswith("grid: 2 task(s) x 1 strategy x each task's seeds = 13 run(s)")
    count = {job.task: job.generations for job in jobs}
    assert f"{TASK} (preset smoke, {count[TASK]} generation(s), seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in shown
    assert f"mnist_vae (preset smoke, {count['mnist_vae']} generation(s), seeds 0, 1, 2)" in shown
    assert "\n  seeds " not in shown
    same, _ = sweep.plan([TASK], ["replace"], [0, 1], "smoke", None, tmp_path)
    assert "x 2 seed(s) = 2 run(s)" in sweep.describe(same, [], LauncherSettings(parallel=1).build(tmp_path))


# ------------------------------------------------------------------ grids, --set, --wandb
def test_parameter_grids_expand_to_every_combination():
    assert grid.expand("mix[real_fraction=0.1,0.3,0.5]") == [
        "mix[real_fraction=0.1]", "mix[real_fraction=0.3]", "mix[real_fraction=0.5]"]
    assert grid.expand("verifier-filter[quality=0.5,1,accumulate=true,false]") == [
        "verifier-filter[quality=0.5,accumulate=true]", "verifier-filter[quality=0.5,accumulate=false]",
        "verifier-filter[quality=1,accumulate=true]", "verifier-filter[quality=1,accumulate=false]"]
    assert grid.expand("dir/my.py:Window[window=1,2]") == ["dir/my.py:Window[window=1]", "dir/my.py:Window[window=2]"]
    assert grid.expand("mix") == ["mix"] and grid.expand(" mix[real_fraction=0.5] ") == ["mix[real_fraction=0.5]"]
    assert grid.expand_all(["mix[real_fraction=0.1,0.3]", "mix[real_fraction=0.3]", "replace"]) == [
        "mix[real_fraction=0.1]", "mix[real_fraction=0.3]", "replace"]


@pytest.mark.parametrize("spec, message", [
    ("mix[0.1,real_fraction=0.3]", "has no parameter before it"),
    ("mix[real_fraction=0.1,,0.3]", "empty item"),
    ("mix[real_fraction=0.1,]", "empty item"),
    ("mix[real_fraction=]", "malformed parameter"),
    ("mix[real_fraction=0.1,0.10]", "given twice"),
    ("mix[real_fraction=0.1,real_fraction=0.3]", "given twice"),
    ("mix[real_fraction=0.1", "malformed strategy spec"),
])
def test_malformed_grids_are_one_clear_error(spec, message):
    with pytest.raises(ParameterError, match=message):
        grid.expand(spec)


def test_sweep_prints_the_grid_first_and_grids_and_settings_reach_the_manifests(tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["sweep", "--tasks", TASK, "--strategies", "mix[real_fraction=0.1,0.3],replace", "--seeds", "0",
            "--preset", "smoke", "--generations", "1", "--set", "trials=20", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("grid: 1 task(s) x 3 strategies x 1 seed(s) = 3 run(s), 0 already complete\n")
    assert printed.index("  strategy  mix[real_fraction=0.3]") < printed.index("ran    already complete")
    assert f"  task      {TASK} (preset smoke, 1 generation(s), set trials=20)" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith(TASK)]
    assert {row[1]: row[2:] for row in rows}["mix[real_fraction=0.1]"][:4] == ["1", "0", "0", "cpu"]
    found = {(r.manifest.strategy.spec, r.manifest.strategy.params.get("real_fraction"),
              r.manifest.task.config["trials"], len(r.records)) for r in results.find_runs([out])}
    assert found == {("mix[real_fraction=0.1]", 0.1, 20, 2), ("mix[real_fraction=0.3]", 0.3, 20, 2), ("replace", None, 20, 2)}
    manifest = next(r.manifest for r in results.find_runs([out]) if r.strategy_label == "replace")
    assert manifest.command[-2:] == ["--set", "trials=20"]


def test_each_setting_goes_to_the_tasks_that_have_its_key():
    assert sweep.task_settings([TASK, "mnist_vae"], "smoke", ["trials=20", "latent=4", "generations=1"]) == {
        TASK: ["trials=20", "generations=1"], "mnist_vae": ["latent=4", "generations=1"]}


def test_bad_grids_and_settings_stop_the_sweep_before_anything_runs(tmp_path, capsys):
    base = ["sweep", "--tasks", TASK, "--seeds", "0", "--preset", "smoke", "--out", str(tmp_path / "runs"), "--no-progress"]
    assert main([*base, "--strategies", "mix[0.1,real_fraction=0.3]"]) == 2
    assert "'0.1' in 'mix[0.1,real_fraction=0.3]' has no parameter before it" in capsys.readouterr().err
    assert main([*base, "--strategies", "replace", "--set", "no_such_key=1"]) == 2
    assert f"--set no_such_key=1: no task of this sweep ({TASK}) has the config key 'no_such_key'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_sweep_mirrors_every_generation_to_wandb(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "runs"
    assert main(["sweep", "--tasks", TASK, "--strategies", "replace", "--seeds", "0", "--preset", "smoke",
                 "--generations", "1", "--out", str(out), "--wandb", "--wandb-project", "sweep-test", "--no-progress"]) == 0
    run = results.find_runs([out])[0]
    assert run.manifest.command[-3:] == ["--wandb", "--wandb-project", "sweep-test"]
    offline = list(run.path.rglob("offline-run-*"))
    assert offline and list(offline[0].rglob("*.wandb"))


# ------------------------------------------------------------------ signals
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are a Linux feature")
def test_killing_the_sweep_ends_its_workers_and_a_rerun_resumes(tmp_path, monkeypatch):
    flag = tmp_path / "paused"
    monkeypatch.setenv("PAUSE_FLAG", str(flag))
    env = dict(os.environ)
    spec = f"{PLUGIN_FILE}:PauseOnce"
    args = ["--tasks", TASK, "--strategies", spec, "--seeds", "0", "--preset", "smoke", "--out", str(tmp_path / "runs")]
    parent = sweep_process(args, env)
    worker = int(wait_for_file(flag, parent).read_text())
    assert alive(worker)
    parent.kill()  # SIGKILL: the sweep cannot forward anything
    parent.communicate(timeout=30)
    assert wait_until_gone(worker), "the worker outlived its sweep"
    run = results.find_runs([tmp_path / "runs"])[0]
    log = (run.path / "sweep.log").read_text()
    assert run.manifest.status == "interrupted" and len(run.records) == 2, log  # the worker recorded its stop

    rerun = sweep_process(args, env)
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    row = next(line for line in stdout.splitlines() if line.startswith(TASK))
    assert row.split()[2:5] == ["1", "0", "0"]
    resumed = results.find_runs([tmp_path / "runs"])[0]
    assert resumed.manifest.status == "complete"
    assert metric_curves(resumed) == straight_metrics(tmp_path, TASK, spec)[0]


def test_a_second_sweep_on_the_same_out_waits_for_the_runs_the_first_holds(tmp_path, monkeypatch):
    flag = tmp_path / "release"
    monkeypatch.setenv("HOLD_FLAG", str(flag))
    env = dict(os.environ)
    args = ["--tasks", TASK, "--strategies", f"{PLUGIN_FILE}:HoldUntilReleased", "--seeds", "0", "--preset", "smoke",
            "--generations", "2", "--out", str(tmp_path / "runs")]
    first = sweep_process(args, env)
    wait_for_file(tmp_path / "release.started", first)  # the first sweep's worker holds seed 0
    second = sweep_process(args, env)
    seen = []
    for line in second.stderr:  # until the second sweep has met the held run (waiting, or failed before)
        seen.append(line)
        if line.startswith(("waiting", "FAILED")):
            break
    flag.touch()
    out_first, err_first = first.communicate(timeout=120)
    out_second, err_second = second.communicate(timeout=120)
    err_second = "".join(seen) + err_second
    assert first.returncode == 0, err_first
    assert second.returncode == 0 and "FAILED" not in err_second, err_second
    assert "waiting linear_regression" in err_second and "another process is running it" in err_second
    row = next(line for line in out_second.splitlines() if line.startswith(TASK))
    assert row.split()[2:5] == ["0", "1", "0"]  # ran, already complete, failed
    assert results.find_runs([tmp_path / "runs"])[0].manifest.status == "complete"
