"""Strategy plugins the sweep and launcher tests name by path (``tests/sweep_plugins.py:Class``).

Each behaves like ``accumulate``; the environment variables they read are set by the tests.
"""

from __future__ import annotations

import os
import signal
import time

from collapselab import Strategy


def parent_of(pid: int) -> int:
    """The parent process of ``pid`` (from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        stat = handle.read()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def run_process_pid() -> int:
    """The run's process: a strategy runs in a child forked from its template, which the run started."""
    return parent_of(os.getppid())


class RecordGpus(Strategy):
    """Writes the ``CUDA_VISIBLE_DEVICES`` its worker sees into ``$GPU_RECORD/<pid>``."""

    name = "record-gpus"

    def training_pool(self, ctx):
        with open(os.path.join(os.environ["GPU_RECORD"], str(run_process_pid())), "w") as handle:
            handle.write(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
        return ctx.accumulated()


class PauseOnce(Strategy):
    """The first time it reaches generation 2 it writes its run's pid to ``$PAUSE_FLAG`` and waits to be stopped."""

    name = "pause-once"

    def training_pool(self, ctx):
        flag = os.environ["PAUSE_FLAG"]
        if ctx.generation == 2 and not os.path.exists(flag):
            with open(flag + ".tmp", "w") as handle:
                handle.write(str(run_process_pid()))
            os.replace(flag + ".tmp", flag)
            time.sleep(120)
        return ctx.accumulated()


class PreemptOnce(Strategy):
    """The first time it reaches generation 2 it sends its submitit job the signal Slurm sends before a
    preemption or the time limit (submitit's ``USR2``) through its run's process, then waits to be stopped."""

    name = "preempt-once"

    def training_pool(self, ctx):
        flag = os.environ["PREEMPT_FLAG"]
        if ctx.generation == 2 and not os.path.exists(flag):
            open(flag, "w").close()
            os.kill(parent_of(run_process_pid()), signal.SIGUSR2)
            time.sleep(120)
        return ctx.accumulated()


class HoldUntilReleased(Strategy):
    """At generation 1 it touches ``$HOLD_FLAG.started`` and waits (at most 120 s) for ``$HOLD_FLAG`` to exist."""

    name = "hold-until-released"

    def training_pool(self, ctx):
        flag = os.environ["HOLD_FLAG"]
        if ctx.generation == 1:
            open(flag + ".started", "w").close()
            deadline = time.monotonic() + 120
            while not os.path.exists(flag) and time.monotonic() < deadline:
                time.sleep(0.05)
        return ctx.accumulated()
