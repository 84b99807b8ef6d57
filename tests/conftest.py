"""Shared test set-up: caches go to a session-wide temporary folder, never the user's."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["COLLAPSELAB_CACHE"] = str(tmp_path_factory.mktemp("collapselab-cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
