"""The sweep's worker: runs one job in this process (``python -P -m collapselab.operations.worker JOB``).

A user error (a broken plugin, a conflicting run directory) is printed as one line and exits
with status 1; the run directory's manifest records it for the sweep's summary.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from collapselab.contracts import registry
from collapselab.errors import USER_ERRORS, PluginError
from collapselab.operations.sweep import Job


def run_job(job: Job) -> None:
    """Run (or resume) ``job`` to completion."""
    from collapselab.engine.loop import RunSpec, execute

    task = registry.make_task(job.task, job.preset)
    strategy = registry.make_strategy(job.strategy)
    spec = RunSpec(task, strategy, job.seed, job.generations, Path(job.root), job.strategy, job.command())
    if spec.directory != job.path:
        raise PluginError(f"{job.label}: the run directory changed since the sweep was planned ({spec.directory})")
    execute(spec, progress=False)


def main(argv: Sequence[str]) -> int:
    try:
        run_job(Job(**json.loads(argv[0])))
    except USER_ERRORS as error:
        print(f"collapselab: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
