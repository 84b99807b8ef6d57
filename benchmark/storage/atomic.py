"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A reader (or a resumed run) sees either the old file or the new one, never a torn write;
a full disk or a crash leaves the old file in place and a clear error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from collapselab.errors import WriteError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
