"""The sweep: parallel child processes with a fair thread share, skipping complete runs, resuming
unfinished ones with identical numbers, and carrying on past failures with a non-zero exit."""

from __future__ import annotations

import textwrap

from collapselab.cli.main import main
from collapselab.engine import rundir as results
from collapselab.operations import sweep

TASK = "linear_regression"

PLUGINS = textwrap.dedent(
    """
    import os

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
        # accumulate, but the process kills itself at generation 2 unless the flag file exists
        name = "crash-once"

        def training_pool(self, ctx):
            flag = os.environ["CRASH_FLAG"]
            if ctx.generation == 2 and not os.path.exists(flag):
                open(flag, "w").close()
                os.kill(os.getpid(), 9)
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
    monkeypatch.setattr(sweep, "available_cpus", lambda: 8)
    env = sweep.child_environment(3)
    assert {env[k] for k in sweep.THREAD_VARIABLES} == {"2"}
    assert sweep.child_environment(16)["OMP_NUM_THREADS"] == "1"
    assert sweep.child_environment(3, threads=4)["OPENBLAS_NUM_THREADS"] == "4"


def test_sweep_runs_in_parallel_skips_done_runs_and_reports_failures(tmp_path, monkeypatch, capsys):
    plugins = tmp_path / "plugins.py"
    plugins.write_text(PLUGINS)
    monkeypatch.setenv("EXPECTED_THREADS", str(max(1, sweep.available_cpus() // 2)))
    strategies = f"replace,{plugins}:Boom,{plugins}:ThreadShare,{plugins}:Picky"
    args = ["sweep", "--tasks", TASK, "--strategies", strategies, "--seeds", "0-1", "--preset", "smoke",
            "--jobs", "2", "--out", str(tmp_path / "runs"), "--no-progress"]

    assert main(args) == 1
    out = capsys.readouterr()
    assert "2 run(s) failed" in out.out
    assert "boom at generation two" in out.out and str(tmp_path / "runs" / TASK / "boom" / "smoke" / "seed-0" / "sweep.log") in out.out
    assert f"not applicable: {TASK} / {plugins}:Picky: picky runs on no task" in out.out
    finished = {(r.strategy_label, r.seed, r.manifest["status"], len(r.records)) for r in results.find_runs([tmp_path / "runs"])}
    assert finished == {("replace", 0, "complete", 4), ("replace", 1, "complete", 4),
                        ("thread-share", 0, "complete", 4), ("thread-share", 1, "complete", 4),
                        ("boom", 0, "failed", 2), ("boom", 1, "failed", 2)}
    assert "done    linear_regression / replace / seed 1" in out.err

    assert main(args) == 1  # complete runs are skipped; the failing ones are retried and fail again
    table = capsys.readouterr().out
    replace_row = next(line for line in table.splitlines() if line.startswith(f"{TASK}  replace"))
    assert replace_row.split()[2:5] == ["0", "2", "0"]  # ran, already complete, failed
    boom_row = next(line for line in table.splitlines() if ":Boom" in line)
    assert boom_row.split()[2:5] == ["0", "0", "2"]


def test_sweep_resumes_a_killed_run_to_the_same_numbers(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins.py"
    plugins.write_text(PLUGINS)
    spec = f"{plugins}:CrashOnce"
    monkeypatch.setenv("CRASH_FLAG", str(tmp_path / "crashed"))
    jobs, outcome = sweep.sweep([TASK], [spec], [0], "smoke", None, tmp_path / "runs", progress=False)
    assert [reason for _, reason in outcome.failed] == ["killed by signal 9 (SIGKILL)"]
    killed = results.load_run(jobs[0].path)
    assert killed.manifest["status"] == "running" and 1 <= len(killed.records) <= 2  # the last checkpoint

    jobs, outcome = sweep.sweep([TASK], [spec], [0], "smoke", None, tmp_path / "runs", progress=False)
    assert outcome.ok and outcome.completed == jobs
    resumed = results.load_run(jobs[0].path)
    jobs, outcome = sweep.sweep([TASK], [spec], [0], "smoke", None, tmp_path / "straight", progress=False)
    straight = results.load_run(jobs[0].path)
    assert len(resumed.records) == 4
    assert [r["metrics"] for r in resumed.records] == [r["metrics"] for r in straight.records]


def test_all_names_the_plugins_that_import():
    assert "linear_regression" in sweep.names("all", "task")
    assert {"replace", "accumulate", "fresh-real"} <= set(sweep.names("all", "strategy"))


def test_plan_names_each_run_directory_once(tmp_path):
    jobs, _ = sweep.plan([TASK], ["mix", "mix[real_fraction=0.5]", "mix[real_fraction=0.3]"], [0, 1], "smoke", None, tmp_path)
    assert [(job.strategy, job.seed) for job in jobs] == [
        ("mix", 0), ("mix", 1), ("mix[real_fraction=0.3]", 0), ("mix[real_fraction=0.3]", 1)]
    assert len({job.directory for job in jobs}) == 4
