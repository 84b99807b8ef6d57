"""Shared test set-up: caches go to a session-wide temporary folder, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["COLLAPSELAB_CACHE"] = str(tmp_path_factory.mktemp("collapselab-cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
    # The suite runs on uncommitted changes: git does not look above the checkout's folders, so the
    # runs the tests make record their checkout's state as unknown (``dirty: null``), which the
    # leaderboard accepts, rather than dirty, which it refuses (tests of the flag set it themselves).
    import collapselab

    os.environ["GIT_CEILING_DIRECTORIES"] = str(Path(collapselab.__file__).resolve().parent.parent)
    from tests import entries

    entries.SHARED_RUNS = tmp_path_factory.mktemp("entry-runs")


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed-0 runs (smoke preset, one synthetic generation) of the three tasks that write sample
    artifacts (MNIST grids, text samples, SDF conformers): the raw material of galleries."""
    from tests.helpers import run_strategy

    root = tmp_path_factory.mktemp("sample-runs")
    for task in ("mnist_vae", "text_lm", "conformer_diffusion"):
        run_strategy(root, task, "replace", seed=0, overrides={"generations": 1})
    return root
