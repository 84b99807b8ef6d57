"""The callable submitit pickles for each job of a ``submitit-local`` or ``slurm`` sweep.

Inside the submitit job it starts the same worker as the local launcher
(``python -P -m collapselab.operations.execution.worker JOB``, output to the run's ``sweep.log``).
It is a :class:`submitit.helpers.Checkpointable`: when the job is preempted or reaches its time
limit, submitit calls :meth:`RunDirectoryJob.checkpoint`, which stops the worker (the run
directory keeps every finished generation) and hands submitit the same job to requeue; the
requeued job resumes the run directory with the numbers an uninterrupted run would give.
The submitit job itself runs with ``PYTHONSAFEPATH=1`` and ``python -P`` (set by the
launchers), so unpickling this callable imports nothing from the working folder.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import submitit

from collapselab.errors import CollapseLabError
from collapselab.operations.execution.jobs import Job, available_cpus, start_worker, stop_worker, wait_for_worker, worker_environment


class RunFailed(CollapseLabError):
    """The worker of a job ended without completing its run (details in the run's ``sweep.log``)."""


class RunDirectoryJob(submitit.helpers.Checkpointable):
    """Run (or resume) one run directory. ``threads``: threads per run (default: the CPUs this job
    was given: ``SLURM_CPUS_PER_TASK``, else the CPU affinity); ``visible_gpus``: the job's
    ``CUDA_VISIBLE_DEVICES`` (default: as the job environment sets it)."""

    def __init__(self, job: Job, threads: int | None = None, visible_gpus: str | None = None) -> None:
        self.job = job
        self.threads = threads
        self.visible_gpus = visible_gpus
        self._process: subprocess.Popen[bytes] | None = None

    def __call__(self) -> int:
        threads = self.threads or int(os.environ.get("SLURM_CPUS_PER_TASK") or available_cpus())
        env = worker_environment(os.environ, threads, self.visible_gpus)
        self._process = start_worker(self.job, env)
        code = wait_for_worker(self._process)
        if code != 0:
            raise RunFailed(f"{self.job.label}: the worker ended with status {code}; see {self.job.path / 'sweep.log'}")
        return code

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Stop the worker and resubmit the same job (it resumes the run directory)."""
        if self._process is not None:
            stop_worker(self._process)
        return submitit.helpers.DelayedSubmission(RunDirectoryJob(self.job, self.threads, self.visible_gpus))

    def __getstate__(self) -> dict[str, Any]:
        return {"job": self.job, "threads": self.threads, "visible_gpus": self.visible_gpus, "_process": None}
