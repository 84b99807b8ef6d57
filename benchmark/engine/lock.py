"""One process per run directory: an advisory file lock (filelock) held while a run executes.

The lock is released by the operating system when its holder dies, so a run killed with
``kill -9`` leaves no stale lock: the next start takes it and resumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from collapselab.errors import RunConflictError


@contextlib.contextmanager
def holding(lock_file: Path, what: str, wait: bool = False) -> Iterator[None]:
    """Hold the lock at ``lock_file`` for the block; if another process holds it, wait (``wait``)
    or raise :class:`RunConflictError` naming ``what``."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise RunConflictError(f"{what} is in use by another process (lock {lock_file}); "
                               "wait for it to finish, or stop it first") from None
    try:
        yield
    finally:
        lock.release()


def held(lock_file: Path) -> bool:
    """Whether another process holds the lock at ``lock_file`` now (taken and released at once if free)."""
    if not lock_file.exists():
        return False
    lock = FileLock(str(lock_file), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False
