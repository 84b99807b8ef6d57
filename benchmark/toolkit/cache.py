"""A content-keyed cache for expensive derived data (reference conformers, trained classifiers).

Entries live under ``$COLLAPSELAB_CACHE`` (default ``~/.cache/collapselab``), never in
the repository. An entry's file name carries the SHA-256 of its key (every setting, library
version and input hash it depends on), so changing any of them builds a new entry and a
stale one is never read. Writes are atomic; the key is stored beside the entry as JSON so a
person can see what an entry was built from.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text

T = TypeVar("T")


def cache_root() -> Path:
    return Path(os.environ.get("COLLAPSELAB_CACHE") or Path.home() / ".cache" / "collapselab")


def key_digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(strict_json.dumps(dict(key)).encode()).hexdigest()


def entry_path(namespace: str, key: Mapping[str, Any], suffix: str) -> Path:
    """Where the entry for ``key`` lives (it may not exist yet)."""
    return cache_root() / namespace / f"{key_digest(key)[:24]}{suffix}"


def cached(
    namespace: str,
    key: Mapping[str, Any],
    suffix: str,
    build: Callable[[], T],
    save: Callable[[T, Path], None],
    load: Callable[[Path], T],
) -> T:
    """``load`` the entry for ``key`` if present, else ``build`` it, ``save`` it atomically and return it."""
    path = entry_path(namespace, key, suffix)
    if path.exists():
        return load(path)
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix}")  # keeps the suffix: np.savez adds none
    try:
        save(value, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_text(path.with_name(path.name + ".key.json"), strict_json.dumps(dict(key), indent=2) + "\n")
    return value
