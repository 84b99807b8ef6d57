"""One job of a sweep: one run directory, run by one worker process.

Every launcher (local processes, submitit's local executor, a Slurm array) runs a job the
same way: ``python -P -m collapselab.operations.execution.worker JOB`` (:func:`worker_command`) with an
environment that caps each thread pool at the job's share of the cores, keeps the working
folder off ``sys.path`` (``PYTHONSAFEPATH``) and, when the sweep assigns GPUs, sets
``CUDA_VISIBLE_DEVICES``. The worker writes its output to ``sweep.log`` in the run directory,
ends with the process that started it (:mod:`collapselab.operations.execution.worker`), and resumes the
run directory where it stopped, so a job can be started again at any time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from collapselab.engine import rundir as results
from collapselab.engine.identity import RunIdentity

LOG = "sweep.log"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: The process a worker must end with (see :func:`collapselab.operations.execution.worker.end_with_parent`).
PARENT_VARIABLE = "COLLAPSELAB_PARENT_PID"
#: How long a stopped worker may take to record its interruption before it is killed.
STOP_SECONDS = 30.0
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Job:
    """One run of the grid (JSON-serialisable: it is handed to the worker process); ``identity`` is
    the run's :meth:`RunIdentity.key`, so a directory holding another experiment is never skipped.
    ``settings`` are the task's ``key=value`` overrides (``--set``); ``wandb_project``, when set,
    mirrors every generation to Weights & Biases."""

    task: str
    strategy: str
    seed: int
    preset: str
    generations: int
    root: str
    directory: str
    identity: str
    settings: tuple[str, ...] = ()
    wandb_project: str | None = None

    @property
    def label(self) -> str:
        return f"{self.task} / {self.strategy} / seed {self.seed}"

    @property
    def path(self) -> Path:
        return Path(self.directory)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        fields = json.loads(text)
        return cls(**{**fields, "settings": tuple(fields.get("settings", ()))})

    def command(self) -> list[str]:
        """The ``collapselab run`` command that makes the same run (recorded in its manifest)."""
        command = ["collapselab", "run", "--task", self.task, "--strategy", self.strategy, "--preset", self.preset,
                   "--seeds", str(self.seed), "--generations", str(self.generations), "--out", self.root]
        for setting in self.settings:
            command += ["--set", setting]
        if self.wandb_project is not None:
            command += ["--wandb", "--wandb-project", self.wandb_project]
        return command

    def recorded(self) -> int:
        """Generations recorded so far (lines of ``generations.jsonl``)."""
        try:
            with open(self.path / results.GENERATIONS, "rb") as handle:
                return sum(1 for line in handle if line.strip())
        except OSError:
            return 0

    def complete(self) -> bool:
        """Finished, with the same task version, configuration, strategy parameters and code as planned."""
        try:
            manifest = results.read_manifest(self.path)
        except (OSError, ValueError):
            return False
        found = RunIdentity.from_manifest(manifest).key()
        done = manifest.status == "complete" and self.recorded() >= self.generations + 1
        return done and found == self.identity

    def device(self) -> str | None:
        """The device the run recorded in its manifest (``environment.device``), if any."""
        try:
            device = results.read_manifest(self.path).environment.get("device")
        except (OSError, ValueError, KeyError):
            return None
        return str(device) if device is not None else None


def worker_command(job: Job) -> list[str]:
    """The worker process of one job. ``-P`` keeps the working folder off ``sys.path``, so a file
    there (``collapselab.py``, ``numpy.py``...) cannot shadow the packages the worker imports."""
    return [sys.executable, "-P", "-m", "collapselab.operations.execution.worker", job.to_json()]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_share(parallel: int, threads: int | None = None) -> int:
    """Threads per job: ``threads`` if given, else this job's share of the cores when ``parallel`` run at once."""
    return threads or max(1, available_cpus() // max(1, parallel))


def worker_environment(base: Mapping[str, str], threads: int, visible_gpus: str | None = None) -> dict[str, str]:
    """``base`` with each thread pool capped at ``threads``, the safe path on and, if given, the GPUs the job may use."""
    env = {**base, **dict.fromkeys(THREAD_VARIABLES, str(threads)), "PYTHONSAFEPATH": "1"}
    if visible_gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible_gpus
    return env


def start_worker(job: Job, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the worker of ``job`` (output appended to its ``sweep.log``); it ends when this process does.

    The worker runs in a session of its own, so a Ctrl-C in the terminal reaches it once, forwarded by
    this process (:func:`stop_worker`), never twice.
    """
    job.path.mkdir(parents=True, exist_ok=True)
    gpus = f" (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']})" if "CUDA_VISIBLE_DEVICES" in env else ""
    with open(job.path / LOG, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {job.label}{gpus}\n".encode())
        log.flush()
        return subprocess.Popen(
            worker_command(job),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**env, PARENT_VARIABLE: str(os.getpid())},
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[Any], timeout: float = STOP_SECONDS) -> None:
    """Ask a worker to stop (SIGTERM: it records the interruption and exits), killing it after ``timeout`` s.

    Safe in a signal handler (submitit's checkpointing calls it from one): it polls instead of
    blocking in ``Popen.wait``, whose lock the interrupted code may hold.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        if not _ended(process, timeout):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            _ended(process, timeout)


def _ended(process: subprocess.Popen[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for_worker(process: subprocess.Popen[Any]) -> int:
    """Wait for a worker to end and return its exit status; if this process is interrupted meanwhile
    (Ctrl-C, a signal turned into an exception), the worker is stopped first."""
    try:
        while (code := process.poll()) is None:
            time.sleep(POLL_SECONDS)
    except BaseException:
        stop_worker(process)
        raise
    return code


def failure_reason(job: Job, returncode: int | None, detail: str | None = None) -> str:
    """Why ``job`` failed: the error its manifest records, else the signal that killed it, else the last
    line of its log, else ``detail`` (what the launcher knows) or its exit status."""
    try:
        manifest = results.read_manifest(job.path)
        if manifest.status in ("failed", "interrupted") and manifest.error is not None:
            return f"generation {manifest.error.generation}: {manifest.error.message}"
    except (OSError, ValueError):
        pass
    if returncode is not None and returncode < 0:
        return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
    try:
        lines = [line for line in (job.path / LOG).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    if lines and not lines[-1].startswith("--- "):
        return lines[-1]
    return detail or f"exit status {returncode}"
