"""The GPUs of this machine and their assignment to a sweep's jobs (``--gpus-per-job N``).

The sweep's own process never imports torch: the GPUs it may hand out are those
``CUDA_VISIBLE_DEVICES`` names when it is set (as a scheduler or the user set it), else
those ``nvidia-smi`` lists. They are cut into groups of N; each job that starts takes the
least busy group (so groups are used round-robin) and sees only that group through its own
``CUDA_VISIBLE_DEVICES``, where torch numbers them from ``cuda:0``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence

from collapselab.errors import ConfigError

NVIDIA_SMI = ("nvidia-smi", "--query-gpu=index", "--format=csv,noheader")

#: Runs a command and returns its standard output (``None`` when it cannot run or fails).
CommandRunner = Callable[[Sequence[str]], "str | None"]


def _run(command: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def detect_gpus(environ: Mapping[str, str] | None = None, run: CommandRunner = _run) -> list[str]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set (an empty value or ``-1``
    hides every GPU), else the indices ``nvidia-smi`` lists, else none."""
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        return [] if ids[:1] == ["-1"] else ids
    listed = run(NVIDIA_SMI)
    return [line.strip() for line in (listed or "").splitlines() if line.strip()]


class GpuSlots:
    """Groups of ``per_job`` GPUs handed to running jobs; a starting job takes the least busy group."""

    def __init__(self, ids: Sequence[str], per_job: int) -> None:
        if per_job < 1:
            raise ConfigError(f"--gpus-per-job must be at least 1, got {per_job}")
        if len(ids) < per_job:
            found = ", ".join(ids) if ids else "none (CUDA_VISIBLE_DEVICES unset or empty, nvidia-smi lists none)"
            raise ConfigError(f"--gpus-per-job {per_job} needs at least {per_job} GPU(s); visible GPUs: {found}")
        self.groups = [list(ids[start:start + per_job]) for start in range(0, len(ids) - per_job + 1, per_job)]
        self.busy = [0] * len(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def acquire(self) -> int:
        """The index of the least busy group (the first on ties), now one job busier."""
        index = min(range(len(self.groups)), key=lambda i: (self.busy[i], i))
        self.busy[index] += 1
        return index

    def release(self, index: int) -> None:
        self.busy[index] -= 1

    def visible(self, index: int) -> str:
        """The ``CUDA_VISIBLE_DEVICES`` value of group ``index``."""
        return ",".join(self.groups[index])
