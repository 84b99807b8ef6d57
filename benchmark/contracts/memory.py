"""Memory bounds: sizes a user or a plugin chose are checked against what this machine can hold
before anything is allocated, so an absurd size is one clear error instead of a MemoryError
(or the operating system's out-of-memory killer) minutes later.

The limit is :data:`MEMORY_FRACTION` of the memory this process may use: the physical memory,
or less where a cgroup (a container, a Slurm job) or ``ulimit -v`` caps it. Estimates are lower
bounds (the payload a run must hold), so a size is refused only when even that payload needs
more than this share of the machine.
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

import numpy as np

from collapselab.contracts.params import INT_LIMIT, shown
from collapselab.contracts.pool import Pool

#: The share of the available memory one run may plan to hold.
MEMORY_FRACTION = 0.8
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (``None`` where the system does not say)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _cgroup_limit() -> int | None:
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None


def available_memory() -> int | None:
    """What this process may use: physical memory, capped by a cgroup limit and ``RLIMIT_AS``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    caps = [physical_memory(), _cgroup_limit(), None if soft == resource.RLIM_INFINITY else soft]
    known = [cap for cap in caps if cap is not None and cap > 0]
    return min(known) if known else None


def memory_limit() -> int | None:
    """The most one run may plan to hold: :data:`MEMORY_FRACTION` of :func:`available_memory`."""
    available = available_memory()
    return None if available is None else int(available * MEMORY_FRACTION)


def format_bytes(count: int | float) -> str:
    """``161061273600`` -> ``'150 GiB'``; any size, however large, in a few characters."""
    if count >= 1024 ** len(_UNITS):
        return f"10^{int(math.log10(count))} bytes"
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {_UNITS[unit]}" if unit == 0 or value >= 100 else f"{value:.3g} {_UNITS[unit]}"


def memory_problem(estimate: int) -> str | None:
    """Why holding ``estimate`` bytes is refused here (``None`` if it fits or the limit is unknown)."""
    limit = memory_limit()
    if limit is None or estimate <= limit:
        return None
    return (f"needs at least {format_bytes(estimate)} of memory; this machine allows {format_bytes(limit)} "
            f"({MEMORY_FRACTION:.0%} of the {format_bytes(available_memory() or 0)} available)")


def item_bytes(pool: Pool) -> int:
    """The bytes one item of ``pool`` takes (payload, origin and weight), whatever the pool's length."""
    payload = sum(array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64)) for array in pool.payload.values())
    return payload + np.dtype(np.int64).itemsize + np.dtype(np.float64).itemsize


def items_problem(count: int, per_item: int) -> str | None:
    """Why ``count`` items of ``per_item`` bytes are refused here (``None`` if they fit)."""
    problem = memory_problem(count * per_item)
    if problem is None:
        return None
    amount = f"{count:,}" if count <= INT_LIMIT else shown(count)
    return f"{amount} items ({format_bytes(per_item)} each): {problem}"
