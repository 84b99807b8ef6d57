"""Leaderboard entries made from real smoke-preset runs, for the leaderboard's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from collapselab.engine.rundir import find_runs
from collapselab.leaderboard.rules import Rules
from collapselab.operations.execution.sweep import plan
from collapselab.operations.execution.worker import run_job
from collapselab.operations.publishing import submit

TASK = "linear_regression"
#: A complete board with sections on every task, frozen as test data (``tests/data/board-v2/README.md``):
#: the site's tests build from it with :data:`SITE_RULES`, the installed-task checks off.
FROZEN_BOARD = Path(__file__).resolve().parent / "data" / "board-v2"
SITE_RULES = Rules(installed=False)
SMOKE = Rules(preset="smoke")
STRATEGIES = {"replace": "replace", "accumulate": "accumulate", "mix": "mix", "fresh-real": "fresh-real",
              "accumulate-growing": "accumulate[compute=growing]", "real-only": "real-only",
              "accumulate-synthetic": "accumulate-synthetic"}


#: One folder of runs for the whole test session (``tests/conftest.py`` sets it): :func:`make_entries`
#: makes each run of a registered strategy once however many test modules build entries from it
#: (the sweep skips complete runs; runs are deterministic). ``None``: runs go under each caller's root.
SHARED_RUNS: Path | None = None


def runs_root(root: Path, names: dict[str, str] = STRATEGIES) -> Path:
    """Where :func:`make_entries` (given ``root``) makes the runs of ``names``: :data:`SHARED_RUNS`, or
    ``root / "runs"`` when a strategy is a file (``path.py:Class``), whose source can differ between
    tests under the same run directory name."""
    files = any(":" in spec for spec in names.values())
    return root / "runs" if files or SHARED_RUNS is None else SHARED_RUNS


def make_entries(root: Path, names: dict[str, str] = STRATEGIES, tasks: tuple[str, ...] = (TASK,),
                 seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, dict[str, Any]]:
    """entry name -> submission, from smoke runs of ``names`` (entry name -> strategy spec), made under
    :func:`runs_root`: the sweep's jobs, run in this process (the sweep's own worker processes are
    tested in tests/test_sweep.py; here they would only add an interpreter start per run). Another
    worker of the test run making the same run is waited for."""
    jobs, _ = plan(list(tasks), list(names.values()), list(seeds), "smoke", None, runs_root(root, names))
    for job in jobs:
        with FileLock(f"{job.path}.making"):
            if not job.complete():
                run_job(job)
    entries = {}
    for name, spec in names.items():
        paths = [job.path for job in jobs if job.strategy == spec]
        entries[name] = submit.build(find_runs(paths), name, f"The {spec} baseline.", None)
    return entries


def write_all(directory: Path, entries: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (directory / f"{entry['name']}.json").write_text(json.dumps(entry, indent=1))
    return directory
