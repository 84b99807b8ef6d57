"""Launchers: local processes, submitit's local executor and Slurm arrays run the same jobs with the
same numbers; GPUs are handed out per job; interrupted and preempted jobs resume; the Slurm
launcher's sbatch script comes from the launcher config (checked without a cluster)."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from collapselab.cli.main import main
from collapselab.engine import rundir as results
from collapselab.errors import ConfigError
from collapselab.leaderboard import SUBMISSIONS
from collapselab.operations.execution import sweep
from collapselab.operations.execution.gpus import NVIDIA_SMI, GpuSlots, detect_gpus
from collapselab.operations.execution.launcher_config import LauncherConfig, load_config
from collapselab.operations.execution.launchers import SLURM_JOBS, LocalLauncher, slurm_parameters
from tests.helpers import (
    PLUGIN_FILE,
    assert_matches_published,
    metric_curves,
    straight_metrics,
    sweep_process,
    wait_for_file,
    wait_until_gone,
)

ROOT = Path(__file__).resolve().parents[1]
TASK = "linear_regression"
LAUNCHERS = ("local", "submitit-local")


def sweep_args(out, strategies, seeds="0", *extra):
    return ["sweep", "--tasks", TASK, "--strategies", strategies, "--seeds", seeds, "--preset", "smoke",
            "--out", str(out), "--no-progress", *extra]


def metrics_by_run(root):
    return {run.path.relative_to(root.resolve()): metric_curves(run) for run in results.find_runs([root])}


def table_rows(printed):
    return {line.split()[1]: line.split()[2:] for line in printed.splitlines() if line.startswith(TASK)}


# ------------------------------------------------------------------ GPUs
def test_gpus_are_found_through_cuda_visible_devices_then_nvidia_smi():
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "GPU-5f3c,GPU-9a1e"}) == ["GPU-5f3c", "GPU-9a1e"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == [] and detect_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    asked = []
    assert detect_gpus({}, run=lambda command: asked.append(tuple(command)) or "0\n1\n2\n") == ["0", "1", "2"]
    assert asked == [NVIDIA_SMI]
    assert detect_gpus({}, run=lambda command: None) == []


def test_gpu_groups_go_to_the_least_busy_group_round_robin():
    slots = GpuSlots(["0", "1", "2", "3", "4"], 2)
    assert len(slots) == 2 and [slots.visible(0), slots.visible(1)] == ["0,1", "2,3"]  # GPU 4 makes no full group
    assert [slots.acquire(), slots.acquire(), slots.acquire()] == [0, 1, 0]
    slots.release(1)
    assert slots.acquire() == 1
    with pytest.raises(ConfigError, match="needs at least 1 GPU"):
        GpuSlots([], 1)


def test_local_launchers_group_the_gpus_their_detection_finds(tmp_path):
    four = LocalLauncher(None, None, 2, LauncherConfig(), tmp_path, detect=lambda: ["0", "1", "2", "3"])
    assert four.capacity == 2 and "GPUs 0,1 | 2,3 (one group per job)" in four.describe()
    assert LocalLauncher(3, None, 2, LauncherConfig(), tmp_path, detect=lambda: ["0", "1", "2", "3"]).capacity == 3

    def no_lookup():
        raise AssertionError("GPUs looked up without --gpus-per-job")

    plain = LocalLauncher(None, None, 0, LauncherConfig(), tmp_path, detect=no_lookup)
    assert plain.capacity == 1 and plain.slots is None


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_gpus_per_job_gives_two_jobs_different_cuda_visible_devices(tmp_path, monkeypatch, capsys, launcher):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two GPUs as a scheduler names them; nothing here computes on one
    record = tmp_path / "seen"
    record.mkdir()
    monkeypatch.setenv("GPU_RECORD", str(record))
    args = sweep_args(tmp_path / "runs", f"{PLUGIN_FILE}:RecordGpus", "0-1", "--generations", "1",
                      "--gpus-per-job", "1", "--launcher", launcher)
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"launcher  {launcher}: 2 job(s) at a time" in printed and "GPUs 0 | 1 (one group per job)" in printed
    assert sorted(path.read_text() for path in record.iterdir()) == ["0", "1"]
    logs = sorted((run.path / "sweep.log").read_text().splitlines()[0][-24:] for run in results.find_runs([tmp_path / "runs"]))
    assert logs == ["(CUDA_VISIBLE_DEVICES=0)", "(CUDA_VISIBLE_DEVICES=1)"]


def test_gpus_per_job_without_gpus_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert main(sweep_args(tmp_path / "runs", "replace", "0", "--gpus-per-job", "1")) == 2
    assert "--gpus-per-job 1 needs at least 1 GPU(s); visible GPUs: none" in capsys.readouterr().err


# ------------------------------------------------------------------ submitit-local
def test_submitit_local_runs_a_grid_to_the_same_numbers_as_local(tmp_path, capsys):
    strategies = "mix[real_fraction=0.2,0.6]"
    extra = ("--generations", "2", "--jobs", "2")
    assert main(sweep_args(tmp_path / "local", strategies, "0-1", *extra)) == 0
    assert main(sweep_args(tmp_path / "submitit", strategies, "0-1", *extra, "--launcher", "submitit-local")) == 0
    printed = capsys.readouterr().out
    assert "launcher  submitit-local: 2 job(s) at a time" in printed
    assert all(row[:4] == ["2", "0", "0", "cpu"] for row in table_rows(printed.split("grid:")[-1]).values())
    local, submitted = metrics_by_run(tmp_path / "local"), metrics_by_run(tmp_path / "submitit")
    assert len(local) == 4 and local == submitted
    assert len(list((tmp_path / "submitit" / ".submitit").glob("*_result.pkl"))) == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are a Linux feature")
@pytest.mark.parametrize("launcher, stop", [("local", signal.SIGINT), ("submitit-local", signal.SIGTERM)])
def test_an_interrupted_sweep_resumes_and_skips_finished_runs(tmp_path, monkeypatch, launcher, stop):
    flag = tmp_path / "paused"
    monkeypatch.setenv("PAUSE_FLAG", str(flag))
    spec = f"{PLUGIN_FILE}:PauseOnce"
    args = sweep_args(tmp_path / "runs", f"replace,{spec}", "0", "--jobs", "1", "--launcher", launcher)[1:]
    first = sweep_process(args, dict(os.environ))
    worker = int(wait_for_file(flag, first).read_text())
    first.send_signal(stop)  # Ctrl-C, or a cancelled job or a timeout (SIGTERM): the sweep stops its jobs
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    assert "interrupted: finished generations are kept" in stdout
    assert wait_until_gone(worker)
    paused = next(run for run in results.find_runs([tmp_path / "runs"]) if run.strategy_label == "pause-once")
    assert paused.manifest.status != "complete" and len(paused.records) == 2

    second = sweep_process(args, dict(os.environ))
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    rows = table_rows(stdout)
    assert rows["replace"][:3] == ["0", "1", "0"] and rows[spec][:3] == ["1", "0", "0"]  # ran, already complete, failed
    resumed = next(run for run in results.find_runs([tmp_path / "runs"]) if run.strategy_label == "pause-once")
    assert resumed.manifest.status == "complete"
    assert metric_curves(resumed) == straight_metrics(tmp_path, TASK, spec)[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="submitit's local requeue needs POSIX signals")
def test_a_preempted_submitit_job_is_requeued_and_resumes_its_run(tmp_path, monkeypatch, capsys):
    flag = tmp_path / "preempted"
    monkeypatch.setenv("PREEMPT_FLAG", str(flag))
    spec = f"{PLUGIN_FILE}:PreemptOnce"
    assert main(sweep_args(tmp_path / "runs", spec, "0", "--launcher", "submitit-local")) == 0
    assert flag.exists()
    assert table_rows(capsys.readouterr().out)[spec][:3] == ["1", "0", "0"]
    run = results.find_runs([tmp_path / "runs"])[0]
    assert (run.path / "sweep.log").read_text().count("--- ") == 2  # started, preempted, requeued, resumed
    logs = "".join(path.read_text() for path in (tmp_path / "runs" / ".submitit").glob("*_log.*"))
    assert "this job is preempted" in logs and "Requeued job" in logs
    assert run.manifest.status == "complete" and metric_curves(run) == straight_metrics(tmp_path, TASK, spec)[0]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sweep_works_from_a_folder_whose_files_shadow_package_names(tmp_path, launcher):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("benchmark", "tasks", "baselines", "collapselab", "submitit", "numpy"):
        (work / f"{name}.py").write_text(textwrap.dedent(f"""
            import pathlib
            pathlib.Path(__file__).with_suffix(".imported").touch()
            raise SystemExit("{name}.py of the working folder was imported")
        """))
    args = ["--tasks", TASK, "--strategies", "replace", "--seeds", "0", "--preset", "smoke", "--generations", "1",
            "--out", "runs", "--launcher", launcher]
    process = sweep_process(args, {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}, cwd=work)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert not list(work.glob("*.imported"))
    assert [run.manifest.status for run in results.find_runs([work / "runs"])] == ["complete"]


@pytest.mark.published_numbers
def test_reproduce_runs_through_the_chosen_launcher(tmp_path, capsys):
    args = ["reproduce", "replace", "--tasks", TASK, "--seeds", "0", "--out", str(tmp_path / "rerun"), "--no-progress"]
    assert main([*args, "--launcher", "submitit-local"]) == 0
    printed = capsys.readouterr().out
    assert "launcher submitit-local: 1 job(s) at a time" in printed
    assert re.search(r"same seeds: [01]/1 curves identical", printed) and printed.rstrip().endswith("PASS")
    assert list((tmp_path / "rerun" / ".submitit").glob("*_result.pkl"))
    (rerun,) = results.find_runs([tmp_path / "rerun"])
    published = json.loads((SUBMISSIONS / "replace.json").read_text())["tasks"][TASK]["runs"]
    assert_matches_published(next(run for run in published if run["seed"] == 0), rerun)


# ------------------------------------------------------------------ launcher config
def test_launcher_config_reads_yaml_and_json_and_names_what_is_wrong(tmp_path):
    (tmp_path / "a.yaml").write_text("partition: gpu\ntime: 90\nsetup:\n  - module load cuda\nslurm_parameters:\n  mail-type: END\n")
    (tmp_path / "a.json").write_text('{"partition": "gpu", "time": 90, "setup": ["module load cuda"], '
                                     '"slurm_parameters": {"mail-type": "END"}}')
    assert load_config(tmp_path / "a.yaml") == load_config(tmp_path / "a.json") == LauncherConfig(
        partition="gpu", time=90, setup=("module load cuda",), slurm_parameters={"mail-type": "END"})
    assert load_config(None) == LauncherConfig()
    for text, message in [("partitoin: gpu\n", "'partitoin' was unexpected"),
                          ("time: -5\n", "field time: -5 is less than the minimum of 1"),
                          ("time: [1\n", "invalid YAML at line"),
                          ("- time\n", "a launcher config is a mapping"),
                          ("slurm_parameters:\n  Bad Key: 1\n", "field slurm_parameters")]:
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_a_bad_launcher_config_stops_the_sweep_with_one_line(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("gpus_per_job: many\n")
    assert main(sweep_args(tmp_path / "runs", "replace", "0", "--launcher-config", str(tmp_path / "bad.yaml"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("collapselab: error: ") and "gpus_per_job: 'many' is not of type 'integer'" in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ slurm (no cluster: fake sbatch/sacct)
def test_slurm_parameters_come_from_the_config():
    config = load_config(ROOT / "leaderboard" / "launchers" / "slurm.example.yaml")
    parameters = slurm_parameters(config, gpus_per_job=1, parallel=None)
    assert parameters["partition"] == config.partition and parameters["time"] == config.time
    assert parameters["gpus_per_node"] == 1 and parameters["cpus_per_task"] == config.cpus_per_job
    assert parameters["setup"][0] == "export PYTHONSAFEPATH=1" and parameters["ntasks_per_node"] == 1
    custom = LauncherConfig(time=30, mem_gb=7.5, array_parallelism=16, account="lab", slurm_parameters={"mail-type": "END"})
    assert slurm_parameters(custom, 0, parallel=4) == {
        "job_name": "collapselab", "account": "lab", "time": 30, "mem": "7680M", "ntasks_per_node": 1,
        "array_parallelism": 4, "signal_delay_s": 120, "setup": ["export PYTHONSAFEPATH=1"],
        "additional_parameters": {"mail-type": "END"}}
    with pytest.raises(ConfigError, match="needs `time`"):
        slurm_parameters(LauncherConfig(), 0, None)


FAKE_SLURM = {
    "srun": "#!/bin/sh\nexit 0\n",
    # sbatch: keep the script, answer with a new job id the way Slurm does
    "sbatch": textwrap.dedent("""\
        #!/bin/sh
        n=$(ls "$FAKE_SLURM_DIR"/submitted-*.sh 2>/dev/null | wc -l)
        cp "$1" "$FAKE_SLURM_DIR/submitted-$n.sh"
        echo "Submitted batch job $((4242 + n))"
    """),
    # sacct: the states the test writes
    "sacct": '#!/bin/sh\ncat "$FAKE_SLURM_DIR/sacct.txt"\n',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``srun``, ``sbatch`` and ``sacct`` stand-ins on PATH: what the launcher hands Slurm is kept for inspection."""
    import submitit

    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in FAKE_SLURM.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (state / "sacct.txt").write_text("JobID|State|NodeList\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    submitit.SlurmJob.watcher.clear()
    yield state
    submitit.SlurmJob.watcher.clear()


def test_slurm_launcher_submits_one_array_built_from_the_config(tmp_path, fake_slurm, capsys):
    from submitit.core.utils import DelayedSubmission

    config = tmp_path / "slurm.yaml"
    config.write_text(textwrap.dedent("""\
        partition: gpu
        account: my-project
        time: 90
        cpus_per_job: 4
        mem_gb: 16
        array_parallelism: 8
        setup: [module load cuda/12.4]
        slurm_parameters: {mail-type: END}
        wait: false
    """))
    out = tmp_path / "runs"
    args = sweep_args(out, "replace,accumulate", "0", "--launcher", "slurm", "--launcher-config", str(config),
                      "--gpus-per-job", "1")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "launcher  slurm: one job array (partition=gpu, account=my-project, time=90, gpus_per_node=1" in printed
    assert "2 run(s) queued or running on the cluster" in printed
    script = (fake_slurm / "submitted-0.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=my-project", "#SBATCH --time=90",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16G",
                 "#SBATCH --array=0-1%2", "#SBATCH --mail-type=END", "#SBATCH --signal=USR2@120",
                 "export PYTHONSAFEPATH=1", "module load cuda/12.4"):
        assert line in script.splitlines(), line
    assert f"{sys.executable} -P -u -m submitit.core._submit" in script
    submitted = sorted((out / ".submitit").glob("4242_*_submitted.pkl"))
    assert [path.name for path in submitted] == ["4242_0_submitted.pkl", "4242_1_submitted.pkl"]
    callables = [DelayedSubmission.load(path).function for path in submitted]
    planned, _ = sweep.plan([TASK], ["replace", "accumulate"], [0], "smoke", None, out)
    assert [c.job for c in callables] == planned
    assert {(c.threads, c.visible_gpus, type(c).__name__) for c in callables} == {(4, None, "RunDirectoryJob")}

    # The array is still queued: the same command submits nothing twice ...
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_0|RUNNING|n1\n4242_1|PENDING|\n")
    assert main(args) == 0
    assert "2 run(s) queued" in capsys.readouterr().out and not (fake_slurm / "submitted-1.sh").exists()
    # ... and once one has failed, only that one is submitted again.
    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_0|FAILED|n1\n4242_1|RUNNING|n2\n")
    assert main(args) == 0
    assert "#SBATCH --array" not in (fake_slurm / "submitted-1.sh").read_text()  # one job, not an array
    recorded = json.loads((out / ".submitit" / SLURM_JOBS).read_text())
    assert recorded == {planned[0].directory: "4243", planned[1].directory: "4242_1"}


def test_slurm_launcher_needs_a_time_limit_and_a_cluster(tmp_path, monkeypatch, capsys):
    (tmp_path / "slurm.yaml").write_text("partition: gpu\n")
    args = sweep_args(tmp_path / "runs", "replace", "0", "--launcher", "slurm", "--launcher-config", str(tmp_path / "slurm.yaml"))
    assert main(args) == 2
    assert "the slurm launcher needs `time`" in capsys.readouterr().err
    (tmp_path / "slurm.yaml").write_text("partition: gpu\ntime: 10\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    assert main(args) == 2
    assert "runs on a Slurm cluster's login node" in capsys.readouterr().err


def test_reproduce_refuses_a_launcher_that_does_not_wait(tmp_path, fake_slurm, capsys):
    (tmp_path / "nowait.yaml").write_text("time: 10\nwait: false\n")
    assert main(["reproduce", "replace", "--tasks", TASK, "--seeds", "0", "--out", str(tmp_path / "rerun"), "--no-progress",
                 "--launcher", "slurm", "--launcher-config", str(tmp_path / "nowait.yaml")]) == 2
    assert "set `wait: true` in the launcher config" in capsys.readouterr().err
    assert not list(fake_slurm.glob("submitted-*.sh"))
