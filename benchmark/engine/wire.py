"""Messages between the run and its strategy's process: strict JSON headers and NumPy blobs.

Nothing on the wire is pickled: what a strategy's process sends is data the run parses (JSON
without NaN, ``.npy``/``.npz`` bytes read with ``allow_pickle=False``), so no object a plugin
makes can run code in the run's process. A frame is the header's length (8 bytes, big-endian),
the header (UTF-8 JSON), then the blobs it lists by size.

Values are JSON values plus three tagged forms: ``{"$array": i}`` (an ndarray, blob i),
``{"$pool": i}`` (a :class:`Pool`, blob i) and ``{"$ref": name}`` (a pool both sides already
hold: the real pool, a synthetic generation, this generation's samples), so a strategy that
returns a pool it was given costs no copy and keeps its identity.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from collapselab.contracts.pool import Pool
from collapselab.errors import PluginError, PoolError

HEADER_LIMIT = 64 << 20  # bytes of JSON in one header
BLOB_LIMIT = 16 << 30  # bytes of one array or pool


class WireError(Exception):
    """The other side sent something that is not a message (or closed the connection)."""


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise WireError("the connection closed")
        got += n
    return bytes(buffer)


def send(sock: socket.socket, header: Mapping[str, Any], blobs: list[bytes] | tuple[bytes, ...] = ()) -> None:
    """Send one frame: ``header`` (strict JSON) followed by ``blobs``."""
    body = json.dumps({**header, "$blobs": [len(b) for b in blobs]}, allow_nan=False, separators=(",", ":")).encode()
    sock.sendall(len(body).to_bytes(8, "big") + body)
    for blob in blobs:
        sock.sendall(blob)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number here")


def receive(sock: socket.socket) -> tuple[dict[str, Any], list[bytes]]:
    """One frame: (header, blobs). Raises :class:`WireError` for a closed or malformed connection."""
    size = int.from_bytes(_receive_exactly(sock, 8), "big")
    if size > HEADER_LIMIT:
        raise WireError(f"a message header of {size} bytes (the limit is {HEADER_LIMIT})")
    try:
        header = json.loads(_receive_exactly(sock, size).decode(), parse_constant=_no_constant)
        sizes = header.pop("$blobs")
        if not isinstance(header, dict) or not all(isinstance(s, int) and 0 <= s <= BLOB_LIMIT for s in sizes):
            raise ValueError("bad blob sizes")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise WireError(f"a malformed message: {exc}") from None
    return header, [_receive_exactly(sock, s) for s in sizes]


def encode(value: Any, references: Mapping[int, str] | None = None) -> tuple[Any, list[bytes]]:
    """``value`` as (JSON tree, blobs); ``references`` maps ``id(pool)`` to a name the other side knows."""
    blobs: list[bytes] = []
    known = references or {}

    def walk(item: Any) -> Any:
        if item is None or isinstance(item, bool | str):
            return item
        if isinstance(item, int | float):
            return item
        if isinstance(item, np.generic) and not isinstance(item, np.object_):
            return item.item()
        if isinstance(item, Pool):
            if id(item) in known:
                return {"$ref": known[id(item)]}
            blobs.append(item.to_bytes())
            return {"$pool": len(blobs) - 1}
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise PluginError("an array of Python objects cannot leave the strategy's process")
            buffer = io.BytesIO()
            np.save(buffer, item, allow_pickle=False)
            blobs.append(buffer.getvalue())
            return {"$array": len(blobs) - 1}
        if isinstance(item, list | tuple):
            return [walk(x) for x in item]
        if isinstance(item, dict):
            if not all(isinstance(k, str) and not k.startswith("$") for k in item):
                raise PluginError("dictionary keys must be strings not starting with '$'")
            return {k: walk(v) for k, v in item.items()}
        raise PluginError(f"a {type(item).__name__} cannot leave the strategy's process (send numbers, strings, "
                          "lists, dicts, arrays or pools)")

    return walk(value), blobs


def decode(tree: Any, blobs: list[bytes], references: Callable[[str], Any] | None = None) -> Any:
    """The value of :func:`encode`; ``references`` resolves ``{"$ref": name}``."""

    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(x) for x in item]
        if not isinstance(item, dict):
            return item
        if "$pool" in item:
            return Pool.from_bytes(_blob(blobs, item["$pool"]), "a pool from the strategy's process")
        if "$array" in item:
            try:
                return np.load(io.BytesIO(_blob(blobs, item["$array"])), allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise WireError(f"a malformed array: {exc}") from None
        if "$ref" in item:
            if references is None:
                raise WireError(f"an unexpected reference {item['$ref']!r}")
            return references(str(item["$ref"]))
        return {k: walk(v) for k, v in item.items()}

    try:
        return walk(tree)
    except PoolError as exc:
        raise WireError(str(exc)) from None


def _blob(blobs: list[bytes], index: Any) -> bytes:
    if not isinstance(index, int) or not 0 <= index < len(blobs):
        raise WireError(f"a reference to a missing blob {index!r}")
    return blobs[index]
