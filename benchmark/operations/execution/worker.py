"""The sweep's worker: runs one job in this process (``python -P -m collapselab.operations.execution.worker JOB``).

A user error (a broken plugin, a conflicting run directory) is printed as one line and exits
with status 1; the run directory's manifest records it for the sweep's summary. The worker
ends with the process that started it (the sweep, or a submitit job): on Linux the kernel
sends it SIGHUP when that process dies (``prctl(PR_SET_PDEATHSIG)``), even by SIGKILL, and the
worker then stops the run as Ctrl-C does (SIGTERM too), so the run directory keeps every
finished generation and a re-run resumes it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from collapselab.contracts import registry
from collapselab.contracts.params import parse_assignment
from collapselab.engine import sandbox
from collapselab.engine.signals import Terminated
from collapselab.errors import USER_ERRORS, PluginError
from collapselab.operations.execution.jobs import PARENT_VARIABLE, Job

PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """Receive SIGHUP when the process named by ``$COLLAPSELAB_PARENT_PID`` ends; exit now if it already has.

    Done here rather than in a ``preexec_fn`` of the parent, which is unsafe in a process with
    threads (the sweep's progress bar has one); the check of the parent's id afterwards closes
    the window between the worker's start and this call. The kernel sends the signal again each
    time a thread of the dying parent that had adopted the worker exits, so only the first one
    stops the run (a second one would cut short the recording of the interruption). Without
    prctl (not Linux) this does nothing.
    """
    expected = os.environ.get(PARENT_VARIABLE)
    if not expected or not sys.platform.startswith("linux"):
        return
    signal.signal(signal.SIGHUP, _parent_ended)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0) != 0:
        return
    if str(os.getppid()) != expected:
        sys.exit(f"collapselab: error: the process that started this worker ({expected}) has ended")


def _parent_ended(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    raise Terminated("the process that started this worker has ended")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


def run_job(job: Job) -> None:
    """Run (or resume) ``job`` to completion."""
    from collapselab.engine.loop import RunSpec, execute

    task = registry.make_task(job.task, job.preset, dict(parse_assignment(s) for s in job.settings))
    strategy = sandbox.describe(job.strategy)
    spec = RunSpec(task, strategy, job.seed, job.generations, Path(job.root), job.strategy, job.command())
    if spec.directory != job.path:
        raise PluginError(f"{job.label}: the run directory changed since the sweep was planned ({spec.directory})")
    listeners: list[Any] = []
    logger = None
    if job.wandb_project is not None:
        from collapselab.operations.execution.wandb_logger import WandbLogger

        logger = WandbLogger(project=job.wandb_project)
        listeners.append(logger)
    try:
        execute(spec, listeners, progress=False)
    finally:
        if logger is not None:
            logger.close()


def main(argv: Sequence[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    end_with_parent()
    try:
        run_job(Job.from_json(argv[0]))
    except USER_ERRORS as error:
        print(f"collapselab: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print(f"collapselab: interrupted ({stop or 'Ctrl-C'}); finished generations are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
