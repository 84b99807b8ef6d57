"""Run directories under stress: one process per directory, SIGTERM and hard exits resume, corrupted or
edited files give one-line errors (never other numbers), stale temporary files are cleaned up, and
kill -9 at random moments resumes bit-identically with the checkpoint cadence."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collapselab.contracts import registry
from collapselab.engine import rundir
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import ResultFileError, RunConflictError
from collapselab.formats.records import as_json
from tests.helpers import metric_curves, run_strategy, slow_plugin

TASK = "linear_regression"
def _command(tmp_path: Path, spec: str, out: Path, generations: int = 4, *extra: str) -> list[str]:
    return [sys.executable, "-m", "collapselab", "run", "--task", TASK, "--strategy", spec, "--preset", "smoke",
            "--generations", str(generations), "--no-progress", "--report-dir", str(tmp_path / "reports"),
            "--out", str(out), *extra]


def _wait_for(marker: Path, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists()


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path):
    spec = slow_plugin(tmp_path)
    marker = tmp_path / "marker"
    env = {**os.environ, "SLOW_MARKER": str(marker), "SLOW_SECONDS": "3"}
    first = subprocess.Popen(_command(tmp_path, spec, tmp_path / "runs"), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _wait_for(marker)
    with pytest.raises(RunConflictError, match="in use by another process"):
        run_strategy(tmp_path / "runs", TASK, spec, generations=4)
    assert first.wait(timeout=60) == 0
    (run,) = rundir.find_runs([tmp_path / "runs"])
    assert run.complete and len(run.records) == 5  # the refused start did not mark it failed


def test_sigterm_marks_the_run_interrupted_and_it_resumes_identically(tmp_path):
    spec = slow_plugin(tmp_path)
    marker = tmp_path / "marker"
    env = {**os.environ, "SLOW_MARKER": str(marker)}
    process = subprocess.Popen(_command(tmp_path, spec, tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for(marker)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    (cut,) = rundir.find_runs([tmp_path / "cut"])
    assert cut.manifest.status == "interrupted" and cut.manifest.error.type == "Terminated"
    env.pop("SLOW_MARKER")
    for out in ("cut", "straight"):
        subprocess.run(_command(tmp_path, spec, tmp_path / out), env=env, check=True, capture_output=True)
    (resumed,), (straight,) = rundir.find_runs([tmp_path / "cut"]), rundir.find_runs([tmp_path / "straight"])
    assert resumed.complete and metric_curves(resumed) == metric_curves(straight)


def test_a_hard_exit_leaves_a_resumable_run(tmp_path):
    spec = slow_plugin(tmp_path)
    env = {**os.environ, "HARD_EXIT": "1"}
    subprocess.run(_command(tmp_path, spec, tmp_path / "runs"), env=env, capture_output=True)
    (run,) = rundir.find_runs([tmp_path / "runs"])
    assert run.manifest.status == "running"  # os._exit gave the process no chance to say so
    env.pop("HARD_EXIT")
    done = subprocess.run(_command(tmp_path, spec, tmp_path / "runs"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (run,) = rundir.find_runs([tmp_path / "runs"])
    assert run.complete and len(run.records) == 5


def test_a_plugin_calling_sys_exit_fails_the_run_with_exit_status_2(tmp_path):
    plugin = tmp_path / "quits.py"
    plugin.write_text("import sys\nfrom collapselab import Strategy\n\nclass Quits(Strategy):\n    name = 'quits'\n\n"
                      "    def training_pool(self, ctx):\n        sys.exit(0)\n")
    result = subprocess.run(_command(tmp_path, f"{plugin}:Quits", tmp_path / "runs"), capture_output=True, text=True)
    assert result.returncode == 2 and "called sys.exit(0)" in result.stderr
    (run,) = rundir.find_runs([tmp_path / "runs"])
    assert run.manifest.status == "failed"


def _finished(tmp_path: Path) -> Path:
    return run_strategy(tmp_path / "runs", TASK, "accumulate", generations=3).path


CORRUPTIONS = {
    "truncated pool": (lambda d: _truncate(d / "pools" / "gen-0001.npz"), "pools/gen-0001.npz: the file changed"),
    "empty pool": (lambda d: (d / "pools" / "gen-0002.npz").write_bytes(b""), "pools/gen-0002.npz: the file changed"),
    "missing pool": (lambda d: (d / "pools" / "gen-0001.npz").unlink(), "gen-0001.npz: cannot read"),
    "bit-flipped model": (lambda d: _flip(d / "models" / "gen-0003.model"), "models/gen-0003.model: the file changed"),
    "edited pool": (lambda d: _flip(d / "pools" / "gen-0002.npz", at=-40), "pools/gen-0002.npz: the file changed"),
    "invalid UTF-8 records": (lambda d: _append(d / "generations.jsonl", b"\xff\xfe\n"), "generations.jsonl: not valid UTF-8"),
    "truncated records": (lambda d: _truncate(d / "generations.jsonl", keep=-30), "generations.jsonl:4: invalid JSON"),
    "empty manifest": (lambda d: (d / "manifest.json").write_bytes(b""), "manifest.json: invalid JSON"),
}


def _truncate(path: Path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _flip(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _append(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_or_edited_run_files_give_one_line_errors_naming_the_file(tmp_path, case):
    directory = _finished(tmp_path)
    damage, message = CORRUPTIONS[case]
    damage(directory)
    with pytest.raises(ResultFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_strategy(tmp_path / "runs", TASK, "accumulate", generations=5)
    result = subprocess.run(_command(tmp_path, "accumulate", tmp_path / "runs", 5), capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message.split(":")[0] in result.stderr


def test_stale_temporary_files_of_killed_writes_are_removed_on_resume(tmp_path):
    directory = _finished(tmp_path)
    stale = [directory / ".generations.jsonl.x1y2.tmp", directory / "pools" / ".gen-0004.npz.abc.tmp",
             directory / "models" / ".gen-0004.model.q.tmp"]
    for path in stale:
        path.write_bytes(b"half a write")
    run_strategy(tmp_path / "runs", TASK, "accumulate", generations=4)
    assert not any(path.exists() for path in stale)


def _kill_and_resume(tmp_path: Path, kills: int, seed: int, generations: int = 300) -> None:
    rng = random.Random(seed)
    command = _command(tmp_path, "accumulate-subsample", tmp_path / "killed", generations, "--checkpoint-seconds", "0.05")
    killed = 0
    while True:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if killed < kills:
            time.sleep(rng.uniform(0.3, 1.5))
            if process.poll() is None:
                process.kill()
                killed += 1
        if process.wait() == 0:
            break
    subprocess.run(_command(tmp_path, "accumulate-subsample", tmp_path / "straight", generations), check=True,
                   capture_output=True)
    (resumed,), (straight,) = rundir.find_runs([tmp_path / "killed"]), rundir.find_runs([tmp_path / "straight"])
    assert resumed.complete and len(resumed.records) == generations + 1
    assert metric_curves(resumed) == metric_curves(straight)
    assert killed == kills


@pytest.mark.slow  # the default suite kills runs mid-way in tests/test_linear_regression_runs.py
def test_kill_9_at_random_moments_resumes_bit_identically(tmp_path):
    _kill_and_resume(tmp_path, kills=3, seed=1, generations=150)


@pytest.mark.slow
def test_kill_9_many_times_resumes_bit_identically(tmp_path):
    _kill_and_resume(tmp_path, kills=40, seed=2)


def test_execute_refuses_a_directory_held_by_this_process_twice(tmp_path):
    task = registry.make_task(TASK, "smoke")
    spec = RunSpec(task, registry.make_strategy("replace"), 0, 1, tmp_path, command=["pytest"])
    from collapselab.engine import lock

    with lock.holding(spec.directory / rundir.LOCK, "x"), pytest.raises(RunConflictError):
        execute(spec, progress=False)


def test_a_resume_under_other_numerics_is_recorded_and_never_compared_bit_for_bit(tmp_path, monkeypatch, capsys):
    from collapselab.engine.environment import NUMERICS_CHANGED
    from collapselab.operations.publishing.reproduce import same_kernel

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    steady = run_strategy(tmp_path / "steady", TASK, "accumulate", generations=2)
    steady = run_strategy(tmp_path / "steady", TASK, "accumulate", generations=4)  # resumed, same threads
    assert NUMERICS_CHANGED not in steady.manifest.environment
    run_strategy(tmp_path / "runs", TASK, "accumulate", generations=2)
    capsys.readouterr()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # generations 3.. sum in other orders than 0..2 did
    mixed = run_strategy(tmp_path / "runs", TASK, "accumulate", generations=4)
    warning = capsys.readouterr().err
    assert "resumes at generation 3 with other numerics" in warning and "omp_num_threads: 1 -> 3" in warning
    assert mixed.manifest.environment[NUMERICS_CHANGED] == [3] and len(mixed.records) == 5
    mixed = run_strategy(tmp_path / "runs", TASK, "accumulate", generations=5)  # resumed again, as the last session
    assert mixed.manifest.environment[NUMERICS_CHANGED] == [3] and mixed.manifest.environment["omp_num_threads"] == "3"
    assert "other numerics" not in capsys.readouterr().err
    reopened = run_strategy(tmp_path / "runs", TASK, "accumulate", generations=5)  # nothing to compute:
    assert reopened.manifest.environment == mixed.manifest.environment  # the environment is the computing one's
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    reopened = run_strategy(tmp_path / "runs", TASK, "accumulate", generations=5)
    assert reopened.manifest.environment["omp_num_threads"] == "3" and reopened.manifest.environment[NUMERICS_CHANGED] == [3]
    assert "other numerics" not in capsys.readouterr().err
    published = [{"manifest": as_json(steady.manifest)}]
    assert same_kernel(published, [steady])
    assert not same_kernel([{"manifest": as_json(mixed.manifest)}], [mixed])  # no single set-up made its numbers
