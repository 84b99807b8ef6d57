"""Strict JSON: no NaN or Infinity on the way out or in, bounded reads and parses, and schema
validation with messages that name the file and the field.

Every JSON file CollapseLab reads may come from someone else (a submission, a run directory
copied from a cluster), so reading is defensive: only regular files (no symlinks, FIFOs or
devices), at most ``max_bytes`` read whatever the file claims to be, nesting at most
``MAX_DEPTH`` levels (deeper documents make recursive validators overflow the stack),
integers of at most ``MAX_INT_DIGITS`` digits (larger ones overflow float conversions) and
only finite numbers (``1e999`` is refused, not read as infinity). Writing refuses what reading
would refuse, so every file CollapseLab writes reads back.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collapselab.errors import ResultFileError
from collapselab.storage import schema as schemas

MAX_DEPTH = 64
MAX_INT_DIGITS = 18
_INT_BOUND = 10**MAX_INT_DIGITS
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is beyond the range of a float (non-finite numbers are not valid JSON)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer with {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are allowed)")
    return int(text)


def _check_integers(obj: Any) -> None:
    """Raise ``ValueError`` for an integer in ``obj`` that :func:`loads` would refuse."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if abs(item) >= _INT_BOUND:
                raise ValueError(f"integer {item} has more than {MAX_INT_DIGITS} digits; it could not be read back")
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def dumps(obj: Any, indent: int | None = None) -> str:
    """Serialise ``obj``; raises ``ValueError`` on NaN or Infinity, or an integer too long to read back,
    instead of writing them."""
    _check_integers(obj)
    return json.dumps(obj, allow_nan=False, indent=indent, sort_keys=indent is not None, ensure_ascii=False)


def nesting_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings ignored), in linear time."""
    import numpy as np

    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    bare = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = np.zeros(bare.shape, dtype=np.int64)
    steps[(bare == ord("[")) | (bare == ord("{"))] = 1
    steps[(bare == ord("]")) | (bare == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def loads(text: str, source: str = "<string>", max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON; :class:`ResultFileError` names ``source`` for anything malformed or too deep."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise ResultFileError(f"{source}: JSON nested {depth} levels deep; at most {max_depth} are allowed")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise ResultFileError(f"{source}: invalid JSON: {exc}") from None


def read_bounded(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (never a symlink, FIFO or device), at most ``max_bytes``."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        reason = "is a symbolic link" if path.is_symlink() else (exc.strerror or str(exc))
        raise ResultFileError(f"{path}: cannot read: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ResultFileError(f"{path}: cannot read: not a regular file")
        if info.st_size > max_bytes:
            raise ResultFileError(f"{path}: file is {info.st_size:,} bytes; the limit is {max_bytes:,}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ResultFileError(f"{path}: file grew past the limit of {max_bytes:,} bytes while being read")
    return data


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """:func:`read_bounded`, decoded as UTF-8 (invalid UTF-8 is a :class:`ResultFileError`)."""
    data = read_bounded(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{path}: not valid UTF-8 (byte {exc.start}): the file is corrupted") from None


def load_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    return loads(read_text(path, max_bytes), str(path))


def validate(instance: Any, schema: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ResultFileError` naming ``source`` and the first offending field."""
    errors = schemas.errors(instance, schema)
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ResultFileError(f"{source}: field {where}: {error.message}{more}")
