"""Timing helper shared by the benchmark scripts in this folder."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Seconds ``fn()`` took and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value
