"""Shared test set-up: caches go to a session-wide temporary folder, never the user's (mypy's and
Python's own bytecode cache aside: they only save time).

The suite runs in parallel (pytest-xdist, one worker per core, ``--dist loadscope``): a module's
functions run on one worker (its module fixtures are built once), a class's tests too (the
contract suite has a class per task, so the tasks run side by side). Each worker is pinned to its
own share of the cores, thread pools and the runs it starts included, so two workers never
oversubscribe the machine (torch's default of one thread per core in each worker made every small
fit of the suite fight for the same cores). What is built once per test run (the cache, the smoke
runs that entries are made from, the sample runs) lives in one folder that every worker shares.
Two workers asking for the same run do not race: the runs are made under a lock
(:func:`tests.entries.make_entries`, :func:`sample_runs`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from filelock import FileLock

# The suite starts several hundred Python processes (its workers, strategy processes, sweep workers,
# command lines), each importing the package. Compiled modules are cached (``__pycache__``, ignored by
# git) even where the environment turns that off (PYTHONDONTWRITEBYTECODE), so each process after the
# first loads them instead of compiling the package again: the suite took 368 s without, 334 s with.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, this worker keeps to its share of the cores (every process it starts inherits
    it): the runs it makes get that many threads (:func:`~collapselab.operations.execution.jobs.available_cpus`
    reads the affinity), and so do NumPy and torch, whose thread pools read these variables when
    first imported (after this hook: test modules are collected later)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if worker is None or count < 2 or len(cores) < count:
        return
    share, index = len(cores) // count, int(worker.removeprefix("gw"))
    mine = cores[index * share:] if index == count - 1 else cores[index * share:(index + 1) * share]
    os.sched_setaffinity(0, mine)
    # jobs.THREAD_VARIABLES, written out: importing collapselab here would load NumPy (and its
    # OpenBLAS threads) before the variables are set
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(len(mine))


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder ``name`` shared by every worker of this test run (each worker's base folder is a
    sub-folder of the run's), or a fresh one of this session when the suite runs in one process."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return tmp_path_factory.mktemp(name)
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # mypy's cache stays the user's (.ci/check_package.py), so that the static checks start warm
    user_cache = os.environ.get("COLLAPSELAB_CACHE") or str(Path.home() / ".cache" / "collapselab")
    os.environ.setdefault("MYPY_CACHE_DIR", str(Path(user_cache) / "mypy"))
    os.environ["COLLAPSELAB_CACHE"] = str(shared_folder(tmp_path_factory, "collapselab-cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
    # The suite runs on uncommitted changes: git does not look above the checkout's folders, so the
    # runs the tests make record their checkout's state as unknown (``dirty: null``), which the
    # leaderboard accepts, rather than dirty, which it refuses (tests of the flag set it themselves).
    import collapselab

    os.environ["GIT_CEILING_DIRECTORIES"] = str(Path(collapselab.__file__).resolve().parent.parent)
    from tests import entries

    entries.SHARED_RUNS = shared_folder(tmp_path_factory, "entry-runs")


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed-0 runs (smoke preset, one synthetic generation) of the three tasks that write sample
    artifacts (MNIST grids, text samples, SDF conformers): the raw material of galleries."""
    from tests.helpers import run_strategy

    root = shared_folder(tmp_path_factory, "sample-runs")
    built = Path(f"{root}.complete")  # beside the folder: the folder holds runs only
    with FileLock(f"{root}.lock"):
        if not built.exists():
            for task in ("mnist_vae", "text_lm", "conformer_diffusion"):
                run_strategy(root, task, "replace", seed=0, overrides={"generations": 1})
            built.touch()
    return root
