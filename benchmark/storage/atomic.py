"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A reader (or a resumed run) sees either the old file or the new one, never a torn write;
a full disk or a crash leaves the old file in place and a clear error. The file gets the
mode an ordinary ``open(path, "w")`` would give it (0666 less the user's umask): the temporary
file of :func:`tempfile.mkstemp` is private (0600), so its mode is set before the rename.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

from collapselab.errors import WriteError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the kernel reports it (Linux),
    else by setting and restoring it under a lock."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode a new file (0666) or folder (0777) gets under the current umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, default_mode())
        except OSError:
            os.close(fd)
            raise
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WriteError(exc.errno, f"could not write {path}: {exc.strerror or exc}; the previous file is unchanged") from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
