"""Where a sweep's jobs run: ``--launcher local | submitit-local | slurm``.

Every launcher runs the same jobs (:class:`~collapselab.operations.execution.jobs.Job`, one run
directory each) through the same worker; they differ only in how a job is started:

* ``local`` (:class:`LocalLauncher`): worker processes of this machine, ``--jobs`` at a time.
* ``submitit-local`` (:class:`SubmititLocalLauncher`): the same jobs through submitit's
  ``LocalExecutor`` (pickled callables, submitit's job folders, requeue on time-out), the way
  the cluster path is exercised on one machine.
* ``slurm`` (:class:`SlurmLauncher`): one Slurm job array through submitit's ``SlurmExecutor``.

On one machine, ``--gpus-per-job N`` gives each running job its own group of N GPUs
(:class:`~collapselab.operations.execution.gpus.GpuSlots`); on Slurm it asks the scheduler for N GPUs per
job. Jobs that are complete are skipped before anything starts, unfinished ones resume, and a
preempted or timed-out submitit job is requeued and resumes (:mod:`.submitit_job`).
"""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from collapselab.errors import CollapseLabError, ConfigError, ResultFileError
from collapselab.operations.execution.gpus import GpuSlots, detect_gpus
from collapselab.operations.execution.jobs import Job, start_worker, stop_worker, thread_share, worker_environment
from collapselab.operations.execution.launcher_config import LauncherConfig
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text

#: submitit's job files and logs, under the sweep's output folder unless the config names another.
SUBMITIT_FOLDER = ".submitit"
#: submitit-local's time limit per job when the config sets none (minutes).
LOCAL_TIME_MINUTES = 3 * 24 * 60
#: The record of submitted Slurm jobs (run directory -> job id), in the submitit folder.
SLURM_JOBS = "slurm-jobs.json"
#: Slurm states of a job that is still queued or running (sacct).
SLURM_ACTIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                          "COMPLETING", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING"})
#: Exported before every Slurm job: unpickling the job then imports nothing from the working folder.
SAFE_PATH_SETUP = "export PYTHONSAFEPATH=1"


@dataclass(frozen=True)
class Exit:
    """How a job ended: ``status`` 0 when its launcher reports success; ``detail``: what the launcher
    knows of a failure (the worker's own error is read from the run directory)."""

    status: int | None
    detail: str | None = None


class Running(abc.ABC):
    """A started job."""

    def __init__(self, visible_gpus: str | None = None, on_exit: Callable[[], None] | None = None) -> None:
        self.visible_gpus = visible_gpus
        self._on_exit = on_exit
        self._exit: Exit | None = None

    def poll(self) -> Exit | None:
        """How the job ended, or ``None`` while it runs."""
        if self._exit is None:
            self._exit = self._poll()
            if self._exit is not None and self._on_exit is not None:
                self._on_exit()
        return self._exit

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the job to end (after :meth:`stop`)."""
        deadline = time.monotonic() + timeout
        while not self.ended() and time.monotonic() < deadline:
            time.sleep(0.1)

    @abc.abstractmethod
    def _poll(self) -> Exit | None: ...

    @abc.abstractmethod
    def ended(self) -> bool:
        """Whether the job has ended (without asking how)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Ask the job to stop; its run directory keeps every finished generation."""


class Launcher(abc.ABC):
    """Starts jobs. ``capacity``: how many the sweep keeps running at once; ``waits``: whether the
    sweep waits for them; ``stops_on_interrupt``: whether Ctrl-C / SIGTERM stops the jobs too;
    ``poll_seconds``: how often the sweep looks at its running jobs."""

    name: ClassVar[str]
    capacity: int
    threads: int | None
    waits: bool = True
    stops_on_interrupt: bool = True
    poll_seconds: float = 0.25

    @abc.abstractmethod
    def start(self, jobs: Sequence[Job]) -> list[Running]:
        """Start ``jobs`` (at most ``capacity`` minus those running)."""

    def still_active(self, jobs: Sequence[Job]) -> list[Job]:
        """Those of ``jobs`` an earlier sweep started and that still run elsewhere (not to be started twice)."""
        return []

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for the printed grid: where the jobs run and with what."""


class _ThisMachine(Launcher):
    """A launcher running ``parallel`` jobs at a time on this machine, each with a fair share of the
    cores and, with ``gpus_per_job``, its own group of GPUs (found by ``detect``)."""

    threads: int

    def __init__(self, parallel: int | None, threads: int | None, gpus_per_job: int, config: LauncherConfig,
                 folder: Path, detect: Callable[[], list[str]] = detect_gpus) -> None:
        self.slots = GpuSlots(detect(), gpus_per_job) if gpus_per_job else None
        if parallel is None:
            parallel = len(self.slots) if self.slots else 1
        self.capacity = parallel
        self.threads = thread_share(parallel, threads)

    def start(self, jobs: Sequence[Job]) -> list[Running]:
        started = []
        for job in jobs:
            if self.slots is None:
                started.append(self.start_one(job, None, None))
            else:
                slot = self.slots.acquire()
                started.append(self.start_one(job, self.slots.visible(slot), functools.partial(self.slots.release, slot)))
        return started

    @abc.abstractmethod
    def start_one(self, job: Job, gpus: str | None, on_exit: Callable[[], None] | None) -> Running: ...

    def describe(self) -> str:
        gpus = (f", GPUs {' | '.join(self.slots.visible(i) for i in range(len(self.slots)))} (one group per job)"
                if self.slots else "")
        return f"{self.name}: {self.capacity} job(s) at a time, {self.threads} thread(s) each{gpus}"


class _Process(Running):
    def __init__(self, process: Any, visible_gpus: str | None, on_exit: Callable[[], None] | None) -> None:
        super().__init__(visible_gpus, on_exit)
        self.process = process

    def _poll(self) -> Exit | None:
        code = self.process.poll()
        return None if code is None else Exit(code)

    def ended(self) -> bool:
        return self.process.poll() is not None

    def stop(self) -> None:
        stop_worker(self.process)


class LocalLauncher(_ThisMachine):
    """Worker processes of this machine (the default); of ``config`` only ``gpus_per_job`` applies."""

    name = "local"

    def start_one(self, job: Job, gpus: str | None, on_exit: Callable[[], None] | None) -> Running:
        return _Process(start_worker(job, worker_environment(os.environ, self.threads, gpus)), gpus, on_exit)


class _Submitted(Running):
    """A job submitted through submitit."""

    def __init__(self, job: Any, visible_gpus: str | None = None, on_exit: Callable[[], None] | None = None) -> None:
        super().__init__(visible_gpus, on_exit)
        self.job = job

    def ended(self) -> bool:
        return bool(self.job.done())

    def _poll(self) -> Exit | None:
        if not self.job.done():
            return None
        try:
            self.job.result()
        except Exception as exc:  # submitit's FailedJobError / UncompletedJobError carry the job's log tail
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            return Exit(None, f"submitit job {self.job.job_id}: {lines[-1] if lines else type(exc).__name__}")
        return Exit(0)

    def stop(self) -> None:
        self.job.cancel(check=False)


def _submitit_python(python: str | None) -> str:
    """The interpreter command of submitit jobs, with ``-P`` (the working folder off ``sys.path``)."""
    return f"{python or shlex.quote(sys.executable)} -P"


class SubmititLocalLauncher(_ThisMachine):
    """The jobs through submitit's ``LocalExecutor`` on this machine; of ``config``, ``gpus_per_job``,
    ``time``, ``max_requeues`` and ``signal_delay_s`` apply."""

    name = "submitit-local"

    def __init__(self, parallel: int | None, threads: int | None, gpus_per_job: int, config: LauncherConfig,
                 folder: Path, detect: Callable[[], list[str]] = detect_gpus) -> None:
        super().__init__(parallel, threads, gpus_per_job, config, folder, detect)
        import submitit

        self.executor = submitit.LocalExecutor(folder=str(folder), max_num_timeout=config.max_requeues,
                                               python=_submitit_python(None))
        self.executor.update_parameters(timeout_min=config.time or LOCAL_TIME_MINUTES, signal_delay_s=config.signal_delay_s)

    def start_one(self, job: Job, gpus: str | None, on_exit: Callable[[], None] | None) -> Running:
        from collapselab.operations.execution.submitit_job import RunDirectoryJob

        # submitit's job controller inherits this process's environment when it starts (no shell
        # ``setup`` here: a shell between the sweep and the controller would swallow its Ctrl-C).
        with _safe_path():
            submitted = self.executor.submit(RunDirectoryJob(job, self.threads, gpus))
        return _Submitted(submitted, gpus, on_exit)

    def describe(self) -> str:
        return f"{super().describe()}; submitit folder {self.executor.folder}"


@contextlib.contextmanager
def _safe_path() -> Iterator[None]:
    """``PYTHONSAFEPATH=1`` in this process's environment while a submitit job starts."""
    previous = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = previous


def slurm_parameters(config: LauncherConfig, gpus_per_job: int, parallel: int | None) -> dict[str, Any]:
    """The ``SlurmExecutor`` parameters of ``config`` (submitit's names; see ``sbatch --help``)."""
    if config.time is None:
        raise ConfigError("the slurm launcher needs `time` (minutes per job) in --launcher-config")
    mem = None
    if config.mem_gb is not None:
        mem = f"{int(config.mem_gb)}G" if float(config.mem_gb).is_integer() else f"{round(config.mem_gb * 1024)}M"
    values = {
        "job_name": config.job_name,
        "partition": config.partition,
        "account": config.account,
        "qos": config.qos,
        "constraint": config.constraint,
        "exclude": config.exclude,
        "comment": config.comment,
        "time": config.time,
        "gpus_per_node": gpus_per_job or None,
        "cpus_per_task": config.cpus_per_job,
        "mem": mem,
        "ntasks_per_node": 1,
        "array_parallelism": parallel or config.array_parallelism,
        "signal_delay_s": config.signal_delay_s,
        "setup": [SAFE_PATH_SETUP, *config.setup],
        "additional_parameters": dict(config.slurm_parameters) or None,
    }
    return {key: value for key, value in values.items() if value is not None}


class SlurmLauncher(Launcher):
    """One Slurm job array per sweep through submitit's ``SlurmExecutor``; Slurm runs
    ``array_parallelism`` (or ``--jobs``) of them at once. The job ids are recorded in the
    submitit folder, so a sweep run again while the array is still queued or running does not
    submit those runs twice. With ``wait: false`` the sweep returns once the array is submitted."""

    name = "slurm"
    stops_on_interrupt = False
    poll_seconds = 5.0  # the run directories are on a shared file system

    def __init__(self, parallel: int | None, threads: int | None, gpus_per_job: int, config: LauncherConfig,
                 folder: Path) -> None:
        self.capacity = sys.maxsize
        self.threads = threads or config.cpus_per_job
        self.waits = config.wait
        self.parameters = slurm_parameters(config, gpus_per_job, parallel)
        self.folder = Path(folder)
        import submitit

        try:
            self.executor = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=config.max_requeues,
                                                   python=_submitit_python(config.python))
        except RuntimeError as exc:
            raise CollapseLabError(f"the slurm launcher runs on a Slurm cluster's login node: {exc}") from None
        self.executor.update_parameters(**self.parameters)

    # ------------------------------------------------------- submitted jobs
    def _recorded(self) -> dict[str, str]:
        path = self.folder / SLURM_JOBS
        if not path.exists():
            return {}
        try:
            found = strict_json.load_file(path)
        except ResultFileError:
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _record(self, submitted: dict[str, str]) -> None:
        atomic_write_text(self.folder / SLURM_JOBS, strict_json.dumps({**self._recorded(), **submitted}, indent=1))

    def still_active(self, jobs: Sequence[Job]) -> list[Job]:
        import submitit

        recorded = self._recorded()
        handles: dict[Job, Any] = {job: submitit.SlurmJob(folder=self.folder, job_id=recorded[job.directory])
                   for job in jobs if job.directory in recorded}
        return [job for job, handle in handles.items() if handle.state.split(" ")[0] in SLURM_ACTIVE]

    def start(self, jobs: Sequence[Job]) -> list[Running]:
        from submitit.core.utils import FailedSubmissionError

        from collapselab.operations.execution.submitit_job import RunDirectoryJob

        try:
            submitted = self.executor.submit_array([RunDirectoryJob(job, self.threads) for job in jobs])
        except (FailedSubmissionError, OSError) as exc:
            raise CollapseLabError(f"sbatch could not submit the array: {exc}") from None
        self._record({job.directory: handle.job_id for job, handle in zip(jobs, submitted)})
        return [_Submitted(handle) for handle in submitted]

    def describe(self) -> str:
        shown = {k: v for k, v in self.parameters.items() if k not in ("setup", "job_name", "signal_delay_s", "ntasks_per_node")}
        text = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"slurm: one job array ({text}); submitit folder {self.folder}"


#: Builds a launcher from ``--jobs``, threads per run, GPUs per job, the config and the submitit folder.
LauncherFactory = Callable[[int | None, int | None, int, LauncherConfig, Path], Launcher]
#: ``--launcher`` name -> launcher.
LAUNCHERS: dict[str, LauncherFactory] = {cls.name: cls for cls in (LocalLauncher, SubmititLocalLauncher, SlurmLauncher)}


@dataclass(frozen=True)
class LauncherSettings:
    """What the command line chose: the launcher, its configuration, ``--jobs`` and ``--gpus-per-job``."""

    kind: str = "local"
    config: LauncherConfig = LauncherConfig()
    parallel: int | None = None
    gpus_per_job: int | None = None

    def build(self, root: Path, threads: int | None = None) -> Launcher:
        """The launcher for a sweep writing under ``root``; ``threads``: threads per run (default: a fair share)."""
        if self.kind not in LAUNCHERS:
            raise ConfigError(f"unknown launcher {self.kind!r}; choose one of {', '.join(LAUNCHERS)}")
        gpus = self.config.gpus_per_job if self.gpus_per_job is None else self.gpus_per_job
        if gpus < 0:
            raise ConfigError(f"--gpus-per-job must be >= 0, got {gpus}")
        if self.parallel is not None and self.parallel < 1:
            raise ConfigError(f"--jobs must be at least 1, got {self.parallel}")
        folder = Path(self.config.folder) if self.config.folder else Path(root) / SUBMITIT_FOLDER
        return LAUNCHERS[self.kind](self.parallel, threads, gpus, self.config, folder)

