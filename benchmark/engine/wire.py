"""Messages between the run and its strategy's process: strict JSON headers and NumPy blobs.

Nothing on the wire is pickled: what a strategy's process sends is data the run parses (JSON
without NaN, ``.npy``/``.npz`` bytes read with ``allow_pickle=False``), so no object a plugin
makes can run code in the run's process. A frame is the header's length (8 bytes, big-endian),
the header (UTF-8 JSON), then the blobs it lists by size.

Values are JSON values plus tagged forms: ``{"$array": i}`` (an ndarray, blob i, ``.npy``
bytes), ``{"$pool": {...}}`` (a :class:`Pool`: its arrays as raw blobs with their dtype and
shape, read back into immutable memory without a copy), ``{"$ref": name}`` (a pool both sides
already hold: the real pool, a synthetic generation, this generation's samples), so a strategy
that returns a pool it was given costs no copy and keeps its identity, and the recipes
``{"$concat": [pool, ...]}`` and ``{"$subset": pool, "index": array}`` for a pool made from
those (:attr:`Pool.lineage`): the receiver rebuilds it from its own copies, so an accumulated or
subsampled history crosses as a few names and an index, not as its items.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from collapselab.contracts import memory
from collapselab.contracts.pool import Pool
from collapselab.errors import PluginError, PoolError

HEADER_LIMIT = 64 << 20  # bytes of JSON in one header
BLOB_LIMIT = 16 << 30  # bytes of one array or pool
POOL_KINDS = "biufcSU"  # dtype kinds a pool's arrays may have on the wire (numbers and fixed-width text)
Blob = bytes | memoryview


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


def send(sock: socket.socket, header: Mapping[str, Any], blobs: list[Blob] | tuple[Blob, ...] = ()) -> None:
    """Send one frame: ``header`` (strict JSON) followed by ``blobs`` (bytes, or byte-format memoryviews)."""
    body = json.dumps({**header, "$blobs": [memoryview(b).nbytes for b in blobs]}, allow_nan=False,
                      separators=(",", ":")).encode()
    sock.sendall(len(body).to_bytes(8, "big") + body)
    for blob in blobs:
        sock.sendall(blob)


def error_header(exc: PluginError) -> dict[str, Any]:
    """The header that reports ``exc`` to the other side: its message and the strategy it blames."""
    return {"error": str(exc), "plugin": exc.plugin}


def error_from(header: Mapping[str, Any]) -> PluginError:
    """The :class:`PluginError` an error header reports (a non-text ``plugin`` is ignored)."""
    plugin = header.get("plugin")
    return PluginError(str(header["error"]), plugin=plugin if isinstance(plugin, str) else None)


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


def _raw(array: np.ndarray, blobs: list[Blob]) -> dict[str, Any]:
    """``array``'s bytes as a blob (no copy when it is contiguous), described by dtype and shape."""
    if array.dtype.kind not in POOL_KINDS:
        raise PoolError(f"a pool's arrays must hold numbers or fixed-width text, not {array.dtype}")
    contiguous = np.ascontiguousarray(array)
    blobs.append(contiguous.reshape(-1).view(np.uint8).data)
    return {"blob": len(blobs) - 1, "dtype": contiguous.dtype.str, "shape": list(contiguous.shape)}


def _pool_data(pool: Pool, blobs: list[Blob]) -> dict[str, Any]:
    return {"payload": {k: _raw(pool[k], blobs) for k in pool.keys}, "origin": _raw(pool.origin, blobs),
            "weight": None if pool.weight is None else _raw(pool.weight, blobs), "replicas": pool.replicas}


def _recipe(pool: Pool, known: Mapping[int, str], blobs: list[Blob]) -> Any:
    """``pool`` as a reference or a recipe of references (its lineage), or ``None`` if it has none."""
    if id(pool) in known:
        return {"$ref": known[id(pool)]}
    lineage = pool.lineage
    if lineage is None or not lineage.sources:
        return None
    mark = len(blobs)
    parts = [_recipe(source, known, blobs) for source in lineage.sources]
    if any(part is None for part in parts):
        del blobs[mark:]
        return None
    if lineage.index is None:
        return {"$concat": parts}
    return {"$subset": parts[0], "index": {"$array": _raw(lineage.index, blobs)}}


def encode(value: Any, references: Mapping[int, str] | None = None) -> tuple[Any, list[Blob]]:
    """``value`` as (JSON tree, blobs); ``references`` maps ``id(pool)`` to a name the other side knows."""
    blobs: list[Blob] = []
    known = references or {}

    def walk(item: Any) -> Any:
        if item is None or isinstance(item, bool | str):
            return item
        if isinstance(item, int | float):
            return item
        if isinstance(item, np.generic) and not isinstance(item, np.object_):
            return item.item()
        if isinstance(item, Pool):
            recipe = _recipe(item, known, blobs)
            return recipe if recipe is not None else {"$pool": _pool_data(item, blobs)}
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


def _array(spec: Any, blobs: list[bytes]) -> np.ndarray:
    """The array :func:`_raw` described: a read-only view of its (immutable) blob."""
    try:
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        data = _blob(blobs, spec["blob"])
        if dtype.kind not in POOL_KINDS or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"dtype {dtype}, shape {shape}")
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(data):
            raise ValueError(f"{len(data)} bytes for shape {shape} of {dtype}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    except (TypeError, KeyError, ValueError) as exc:
        raise WireError(f"a malformed pool array: {exc}") from None


def _pool(spec: Any, blobs: list[bytes]) -> Pool:
    try:
        payload = {str(k): _array(v, blobs) for k, v in spec["payload"].items()}
        weight = None if spec["weight"] is None else _array(spec["weight"], blobs)
        return Pool(payload, _array(spec["origin"], blobs), weight, int(spec["replicas"]))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise WireError(f"a malformed pool: {exc}") from None


def decode(tree: Any, blobs: list[bytes], references: Callable[[str], Any] | None = None) -> Any:
    """The value of :func:`encode`; ``references`` resolves ``{"$ref": name}``."""

    def pool(item: Any) -> Pool:
        found = walk(item)
        if not isinstance(found, Pool):
            raise WireError("a pool recipe names something that is not a pool")
        return found

    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(x) for x in item]
        if not isinstance(item, dict):
            return item
        if "$pool" in item:
            return _pool(item["$pool"], blobs)
        if "$array" in item:
            if isinstance(item["$array"], dict):  # raw, as a recipe's index
                return _array(item["$array"], blobs)
            try:
                return np.load(io.BytesIO(_blob(blobs, item["$array"])), allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise WireError(f"a malformed array: {exc}") from None
        if "$ref" in item:
            if references is None:
                raise WireError(f"an unexpected reference {item['$ref']!r}")
            return references(str(item["$ref"]))
        if "$concat" in item:
            if not isinstance(item["$concat"], list):
                raise WireError("a malformed pool recipe")
            parts = [pool(part) for part in item["$concat"]]
            problem = memory.items_problem(sum(len(p) for p in parts), memory.item_bytes(parts[0])) if parts else None
            if problem is not None:  # a recipe naming the same pools many times must not exhaust memory here
                raise WireError(f"a pool recipe of {problem}")
            return Pool.concat(parts)
        if "$subset" in item:
            index = walk(item.get("index"))
            if not isinstance(index, np.ndarray):
                raise WireError("a pool recipe's index is not an array")
            return pool(item["$subset"]).subset(index)
        return {k: walk(v) for k, v in item.items()}

    try:
        return walk(tree)
    except PoolError as exc:
        raise WireError(str(exc)) from None


def _blob(blobs: list[bytes], index: Any) -> bytes:
    if not isinstance(index, int) or not 0 <= index < len(blobs):
        raise WireError(f"a reference to a missing blob {index!r}")
    return blobs[index]
