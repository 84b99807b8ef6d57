"""Pool: an immutable, modality-agnostic collection of training examples with provenance.

Every item carries its origin: ``-1`` for real data, ``g`` for data sampled from the
generation-``g`` model, and optionally a training weight. The payload is a dict of NumPy
arrays whose first axis indexes items; what the arrays hold (images, token chunks, atom
coordinates, regression rows) is the task's business.

Replicas. A task may vectorise independent Monte-Carlo trials inside one run (the
regression task does). Such a pool has ``replicas = R > 1``: every payload array has shape
``(n, R, ...)`` and item ``i`` stands for ``R`` independent draws that share one provenance.
A selection may then pick different items in each replica (``subset`` with a 2-D index of
shape ``(k, R)``) as long as every row of the selection has one origin, so the provenance
stays per item. The helpers in :mod:`collapselab.contracts.selection` do this for strategies.

Lineage. A sealed pool (:meth:`Pool.sealed`: immutable memory) is a root, and a pool made from
roots by :meth:`Pool.concat` and :meth:`Pool.subset` remembers how (:attr:`Pool.lineage`). The
run and a strategy's process use it to name such a pool by its recipe (which known pools, which
items) instead of copying its items across, and the run, having rebuilt it from its own pools,
needs no check that its items are items it produced.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.errors import PoolError
from collapselab.storage.atomic import atomic_write_bytes

REAL = -1
#: The largest item weight. Weights are relative (fits normalise by their sum), and a bound keeps
#: the sums and weighted statistics of any pool finite.
MAX_WEIGHT = 1e12
_RESERVED = ("__origin__", "__weight__", "__meta__")



def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only view (no copy): the pool never changes what it holds."""
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def _sealed(array: np.ndarray) -> np.ndarray:
    """A copy backed by an immutable ``bytes`` object: its WRITEABLE flag cannot be set again."""
    array = np.ascontiguousarray(array)
    return np.frombuffer(array.tobytes(), dtype=array.dtype).reshape(array.shape)


def _immutable(array: np.ndarray) -> bool:
    """Whether ``array`` is a read-only view of an immutable ``bytes`` object (what :func:`_sealed` makes)."""
    if array.flags.writeable:
        return False
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, bytes)


@dataclass(frozen=True, eq=False)
class Lineage:
    """How a pool was made from sealed pools: the items of ``sources`` in order (a concatenation,
    ``index`` None), or ``sources[0].subset(index)``. Roots (sealed pools) have no sources."""

    sources: tuple[Pool, ...] = ()
    index: np.ndarray | None = None


_ROOT = Lineage()


def _composed(outer: np.ndarray, inner: np.ndarray, replicas: int) -> np.ndarray:
    """The selection ``inner`` of the selection ``outer``, as one selection of ``outer``'s source."""
    if outer.ndim == 2 and inner.ndim == 2:
        return outer[inner, np.arange(replicas)]
    return outer[inner]


def _splitmix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, element-wise on uint64 (wrapping arithmetic), in place on ``z``."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


class Pool:
    """Training examples plus per-item provenance (origin, optional weight)."""

    __slots__ = ("_data", "_deferred", "_keys", "_origin", "_weight", "_replicas", "_lineage")

    def __init__(
        self,
        payload: Mapping[str, np.ndarray],
        origin: np.ndarray | Sequence[int] | int,
        weight: np.ndarray | None = None,
        replicas: int = 1,
    ) -> None:
        if not payload:
            raise PoolError("a pool needs at least one payload array")
        arrays = {str(k): np.asarray(v) for k, v in payload.items()}
        for key in arrays:
            if key in _RESERVED:
                raise PoolError(f"payload key {key!r} is reserved")
        lengths = {k: (a.shape[0] if a.ndim else None) for k, a in arrays.items()}
        n_values = set(lengths.values())
        if None in n_values or len(n_values) != 1:
            raise PoolError(f"payload arrays must share their first axis; got lengths {lengths}")
        n = n_values.pop()
        if replicas < 1:
            raise PoolError(f"replicas must be >= 1, got {replicas}")
        if replicas > 1:
            bad = {k: a.shape for k, a in arrays.items() if a.ndim < 2 or a.shape[1] != replicas}
            if bad:
                raise PoolError(f"with replicas={replicas} every array needs shape (n, {replicas}, ...); got {bad}")
        count = int(n or 0)
        origin = np.full(count, int(origin), dtype=np.int64) if isinstance(origin, int | np.integer) else np.asarray(origin, dtype=np.int64)
        if origin.shape != (n,):
            raise PoolError(f"origin must have shape ({n},), got {origin.shape}")
        if n and origin.min() < REAL:
            raise PoolError(f"origins must be >= {REAL} (real) or a generation index")
        if weight is not None:
            weight = np.asarray(weight, dtype=np.float64)
            if weight.shape != (n,):
                raise PoolError(f"weight must have shape ({n},), got {weight.shape}")
            if not np.all(np.isfinite(weight)) or np.any(weight < 0) or np.any(weight > MAX_WEIGHT):
                raise PoolError(f"weights must be finite, non-negative and at most {MAX_WEIGHT:g} "
                                "(they are relative: scale them down)")
        self._data: dict[str, np.ndarray] | None = {k: _frozen(a) for k, a in arrays.items()}
        self._deferred: Callable[[], dict[str, np.ndarray]] | None = None
        self._keys = tuple(arrays)
        self._origin = _frozen(origin)
        self._weight = None if weight is None else _frozen(weight)
        self._replicas = int(replicas)
        self._lineage: Lineage | None = None

    @classmethod
    def _deferred_pool(cls, like: Pool, origin: np.ndarray, weight: np.ndarray | None,
                       payload: Callable[[], dict[str, np.ndarray]]) -> Pool:
        """A pool of ``like``'s kind whose payload (items of valid pools) is made on first use: a pool made
        only to be named by its recipe never copies its items."""
        pool = cls.__new__(cls)
        pool._data, pool._deferred, pool._keys = None, payload, like.keys
        pool._origin = _frozen(origin)
        pool._weight = None if weight is None else _frozen(weight)
        pool._replicas, pool._lineage = like.replicas, None
        return pool

    @property
    def _payload(self) -> dict[str, np.ndarray]:
        if self._data is None:
            assert self._deferred is not None
            self._data = {k: _frozen(a) for k, a in self._deferred().items()}
            self._deferred = None
        return self._data

    def _derived(self, lineage: Lineage) -> Pool:
        """This pool, remembering ``lineage`` (set once, by the pool operations that made it)."""
        self._lineage = lineage
        return self

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self._origin.shape[0])

    def __repr__(self) -> str:
        keys = ", ".join(f"{k}{tuple(a.shape)}" for k, a in self._payload.items())
        return f"Pool(n={len(self)}, replicas={self._replicas}, origins={self.origin_counts()}, payload=[{keys}])"

    @property
    def payload(self) -> Mapping[str, np.ndarray]:
        return dict(self._payload)

    def __getitem__(self, key: str) -> np.ndarray:
        return self._payload[key]

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys

    @property
    def origin(self) -> np.ndarray:
        return self._origin

    @property
    def weight(self) -> np.ndarray | None:
        return self._weight

    @property
    def replicas(self) -> int:
        return self._replicas

    @property
    def lineage(self) -> Lineage | None:
        """How this pool was made from sealed pools (a sealed pool: a root, no sources); ``None``
        when any of its items came from elsewhere (a constructor, :meth:`with_origin`, ...)."""
        return self._lineage

    def derives_from(self, roots: Sequence[Pool]) -> bool:
        """Whether every item of this pool is, by construction, an item of one of ``roots`` (or the pool
        is one of them), with the origin and weight it has there."""
        if any(self is root for root in roots):
            return True
        lineage = self._lineage
        return bool(lineage is not None and lineage.sources and all(s.derives_from(roots) for s in lineage.sources))

    def origin_counts(self) -> dict[int, int]:
        """Number of items per origin, sorted by origin (-1 = real first)."""
        values, counts = np.unique(self._origin, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    # ------------------------------------------------------------- combining
    def with_origin(self, origin: int) -> Pool:
        """The same items, all marked as coming from ``origin``."""
        return Pool(self._payload, origin, self._weight, self._replicas)

    def with_weight(self, weight: np.ndarray | None) -> Pool:
        return Pool(self._payload, self._origin, weight, self._replicas)

    def subset(self, indices: np.ndarray | Sequence[int]) -> Pool:
        """Items at ``indices``.

        ``indices`` is 1-D (the same items in every replica) or, for a pool with replicas,
        2-D of shape ``(k, replicas)`` (item ``indices[i, r]`` in replica ``r``); each row of a
        2-D selection must have one origin and one weight.
        """
        idx = np.asarray(indices)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise PoolError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise PoolError(f"indices out of range for a pool of {len(self)} items")
        picked = self._picked(idx)
        lineage = self._lineage
        if lineage is not None:
            if lineage.sources and lineage.index is not None:  # a selection of a selection: one selection of the source
                picked._derived(Lineage(lineage.sources, _composed(lineage.index, idx, self._replicas)))
            else:
                picked._derived(Lineage((self,), idx))
        return picked

    def _picked(self, idx: np.ndarray) -> Pool:
        """The items at ``idx`` (validated integer indices), as :meth:`subset` describes."""
        if idx.ndim == 1:
            return Pool._deferred_pool(self, self._origin[idx], None if self._weight is None else self._weight[idx],
                                       lambda: self._gathered(idx))
        if idx.ndim != 2 or idx.shape[1] != self._replicas:
            raise PoolError(f"a 2-D selection needs shape (k, {self._replicas}); got {idx.shape}")
        origin = self._origin[idx]
        if np.any(origin != origin[:, :1]):
            raise PoolError("each row of a per-replica selection must pick items of one origin")
        weight = None
        if self._weight is not None:
            w = self._weight[idx]
            if np.any(w != w[:, :1]):
                raise PoolError("each row of a per-replica selection must pick items of one weight")
            weight = w[:, 0]
        return Pool._deferred_pool(self, origin[:, 0], weight, lambda: self._gathered(idx))

    def _gathered(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The payload of the items at ``idx`` (1-D, or 2-D per replica); from the parts of a concatenation
        not yet made, without making it."""
        lineage, replica = self._lineage, np.arange(self._replicas)
        if self._data is not None or lineage is None or not lineage.sources or lineage.index is not None:
            return {k: (a[idx] if idx.ndim == 1 else a[idx, replica]) for k, a in self._payload.items()}
        parts = lineage.sources
        offsets = np.cumsum([0, *(len(part) for part in parts)])
        which = np.searchsorted(offsets, idx, side="right") - 1
        if idx.ndim == 2:  # rows within one part (a selection per origin) are gathered whole, the rest item by item
            whole = np.all(which == which[:, :1], axis=1)
            row_part = np.where(whole, which[:, 0], -1)
            mixed = None if whole.all() else ~whole[:, None] & np.ones_like(idx, dtype=bool)
        columns = None if idx.ndim == 1 else np.broadcast_to(replica, idx.shape)
        gathered = {}
        for key in self._keys:
            first = parts[0][key]
            out = np.empty(idx.shape + first.shape[idx.ndim:], dtype=first.dtype)
            for number, part in enumerate(parts):
                if idx.ndim == 1:
                    mask = which == number
                    out[mask] = part[key][idx[mask] - offsets[number]]
                    continue
                rows = np.flatnonzero(row_part == number)
                if len(rows):
                    out[rows] = part[key][idx[rows] - offsets[number], replica]
                mask = None if mixed is None else mixed & (which == number)
                if mask is not None and mask.any():
                    out[mask] = part[key][idx[mask] - offsets[number], columns[mask]]  # type: ignore[index]
            gathered[key] = out
        return gathered

    def by_origin(self, origin: int | Iterable[int]) -> Pool:
        """The items whose origin is ``origin`` (or any of several origins)."""
        wanted = np.atleast_1d(np.asarray(origin if isinstance(origin, int | np.integer) else list(origin)))
        return self.subset(np.flatnonzero(np.isin(self._origin, wanted)))

    @staticmethod
    def concat(pools: Sequence[Pool]) -> Pool:
        """One pool holding the items of ``pools`` in order."""
        pools = list(pools)
        if not pools:
            raise PoolError("concat needs at least one pool")
        first = pools[0]
        for p in pools[1:]:
            if p.keys != first.keys:
                raise PoolError(f"cannot concat pools with payload keys {first.keys} and {p.keys}")
            if p.replicas != first.replicas:
                raise PoolError(f"cannot concat pools with {first.replicas} and {p.replicas} replicas")
            for k in first.keys:
                if p[k].shape[1:] != first[k].shape[1:] or p[k].dtype != first[k].dtype:
                    raise PoolError(
                        f"payload {k!r}: item shape/dtype {first[k].shape[1:]}/{first[k].dtype} "
                        f"vs {p[k].shape[1:]}/{p[k].dtype}"
                    )
        if len(pools) == 1:
            return first
        weighted = any(p.weight is not None for p in pools)
        weight = (
            np.concatenate([np.ones(len(p)) if p.weight is None else p.weight for p in pools]) if weighted else None
        )
        joined = Pool._deferred_pool(first, np.concatenate([p.origin for p in pools]), weight,
                                     lambda: {k: np.concatenate([p[k] for p in pools]) for k in first.keys})
        return joined._derived(Lineage(tuple(pools))) if all(p.lineage is not None for p in pools) else joined

    def _arrays(self) -> list[np.ndarray]:
        return [*self._payload.values(), self._origin, *(() if self._weight is None else (self._weight,))]

    @property
    def is_sealed(self) -> bool:
        """Whether every array lives in immutable memory (nothing can change this pool's content)."""
        return all(_immutable(a) for a in self._arrays())

    def sealed(self) -> Pool:
        """The same pool with every array in immutable memory (what the loop hands to strategies:
        ``flags.writeable = True`` then raises instead of letting a plugin edit data); a root of
        lineage. Arrays already immutable are not copied."""
        if self._lineage is _ROOT:
            return self
        def seal(array: np.ndarray) -> np.ndarray:
            return array if _immutable(array) else _sealed(array)
        return Pool({k: seal(a) for k, a in self._payload.items()}, seal(self._origin),
                    None if self._weight is None else seal(self._weight), self._replicas)._derived(_ROOT)

    def row_digests(self, key: np.ndarray) -> np.ndarray:
        """A keyed 64-bit digest of each item's payload (shape ``(n,)``, or ``(n, replicas)``).

        Each payload word is offset by a secret per-position ``key`` word, mixed with the
        SplitMix64 finaliser (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
        generators", OOPSLA) and the mixed words are summed modulo 2^64. Equal payloads give
        equal digests; without the key (drawn per process) a plugin cannot aim at collisions.
        Weights and origins are not part of the digest."""
        shape = (len(self),) if self._replicas == 1 else (len(self), self._replicas)
        total = np.zeros(shape, dtype=np.uint64)
        arrays = [np.ascontiguousarray(self._payload[name]) for name in sorted(self._payload)]
        row_bytes = sum(a[:1].nbytes for a in arrays) or 1
        step = max(1, (1 << 20) // row_bytes)  # items per chunk: the temporaries stay in cache
        with np.errstate(over="ignore"):
            for begin in range(0, len(self), step):
                chunk = total[begin : begin + step]
                offset = 0
                for array in arrays:
                    part = array[begin : begin + step]
                    flat = part.reshape(*chunk.shape, -1).view(np.uint8).reshape(*chunk.shape, -1)
                    pad = (-flat.shape[-1]) % 8
                    if pad:
                        padded = np.zeros((*chunk.shape, flat.shape[-1] + pad), dtype=np.uint8)
                        padded[..., : flat.shape[-1]] = flat
                        flat = padded
                    words = flat.view(np.uint64)
                    width = words.shape[-1]
                    if offset + width > len(key):
                        raise PoolError(f"digest key too short for items of {offset + width} words")
                    mixed = _splitmix(words + key[offset : offset + width])
                    chunk += mixed[..., 0] if width == 1 else mixed.sum(axis=-1, dtype=np.uint64)
                    offset += width
        return total

    def equals(self, other: Pool) -> bool:
        """Same items, provenance and replicas (exact array equality)."""
        if self.keys != other.keys or self.replicas != other.replicas:
            return False
        if not np.array_equal(self.origin, other.origin):
            return False
        if (self.weight is None) != (other.weight is None):
            return False
        if self.weight is not None and other.weight is not None and not np.array_equal(self.weight, other.weight):
            return False
        return all(np.array_equal(self[k], other[k]) for k in self.keys)

    # ------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        """The pool as the bytes of one ``.npz`` archive (no pickled objects)."""
        arrays = dict(self._payload)
        arrays["__origin__"] = self._origin
        if self._weight is not None:
            arrays["__weight__"] = self._weight
        arrays["__meta__"] = np.frombuffer(json.dumps({"replicas": self._replicas}).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        savez: Any = np.savez  # numpy's stubs do not type **arrays
        try:
            savez(buffer, **arrays)
        except ValueError as exc:  # object arrays need pickle, which pools never use
            raise PoolError(f"a pool's arrays must hold numbers, not Python objects: {exc}") from None
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "pool") -> Pool:
        """The pool of :meth:`to_bytes`; anything else raises :class:`PoolError` naming ``label``."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        except (OSError, ValueError, EOFError) as exc:
            raise PoolError(f"cannot read {label}: {exc}") from exc
        try:
            meta: dict[str, Any] = json.loads(arrays.pop("__meta__").tobytes().decode())
            origin = arrays.pop("__origin__")
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise PoolError(f"{label} lacks {exc.args[0]}") from exc
        weight = arrays.pop("__weight__", None)
        return cls(arrays, origin, weight, int(meta.get("replicas", 1)))

    def save(self, path: str | Path) -> None:
        """Write the pool to one ``.npz`` file, atomically."""
        atomic_write_bytes(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> Pool:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PoolError(f"cannot read pool file {path}: {exc}") from exc
        return cls.from_bytes(data, f"pool file {path}")
