"""The messages between a run and its strategy's process: pools as raw arrays, or as recipes of pools both
sides hold, rebuilt by the receiver from its own copies."""

from __future__ import annotations

import numpy as np
import pytest

from collapselab import REAL, Pool
from collapselab.contracts import memory
from collapselab.contracts.pool import Lineage
from collapselab.engine import wire


def pools() -> tuple[Pool, Pool]:
    rng = np.random.default_rng(0)
    real = Pool({"row": np.arange(12, dtype=np.int32).reshape(6, 2), "y": rng.standard_normal((6, 2))}, REAL, replicas=2)
    first = Pool({"row": np.arange(8, dtype=np.int32).reshape(4, 2), "y": rng.standard_normal((4, 2))}, 1, replicas=2)
    return real.sealed(), first.sealed()


def crossed(value, known, names):
    tree, blobs = wire.encode(value, known)
    return tree, wire.decode(tree, [bytes(b) for b in blobs], names.__getitem__)


def test_a_pool_crosses_as_raw_arrays_into_immutable_memory():
    real, _ = pools()
    weighted = real.with_weight(np.arange(6.0))
    tree, back = crossed(weighted, {}, {})
    assert "$pool" in tree and back.equals(weighted) and back.is_sealed
    with pytest.raises(ValueError):
        back["y"].flags.writeable = True


def test_an_accumulated_or_subsampled_history_crosses_as_names_and_an_index():
    real, first = pools()
    theirs = {"real": Pool(real.payload, REAL, replicas=2).sealed(), "synthetic:1": Pool(first.payload, 1, replicas=2).sealed()}
    known = {id(real): "real", id(first): "synthetic:1"}
    joined = Pool.concat([real, first])
    tree, back = crossed(joined, known, theirs)
    assert tree == {"$concat": [{"$ref": "real"}, {"$ref": "synthetic:1"}]}
    assert back.equals(joined) and back.derives_from(list(theirs.values()))
    picked = joined.subset(np.array([[7, 9], [0, 5]]))
    tree, back = crossed(picked, known, theirs)
    assert tree["$subset"] == {"$concat": [{"$ref": "real"}, {"$ref": "synthetic:1"}]} and "$array" in tree["index"]
    assert back.equals(picked) and back.derives_from(list(theirs.values()))


def test_a_forged_lineage_brings_only_the_receivers_own_items():
    """A sender that attaches a recipe to made-up items gets the items the recipe names, never its own."""
    real, _ = pools()
    forged = Pool({"row": real["row"], "y": real["y"] * 0.0}, REAL, replicas=2)
    object.__setattr__(forged, "_lineage", Lineage((real,), np.arange(6)))
    _, back = crossed(forged, {id(real): "real"}, {"real": real})
    assert back.equals(real) and not np.array_equal(back["y"], forged["y"])


def test_a_recipe_naming_pools_beyond_memory_is_refused_before_anything_is_allocated(monkeypatch):
    real, _ = pools()
    monkeypatch.setattr(memory, "memory_limit", lambda: 10 * memory.item_bytes(real))
    tree = {"$concat": [{"$ref": "real"}] * 3}  # 18 items where 10 fit
    with pytest.raises(wire.WireError, match="a pool recipe of 18 items"):
        wire.decode(tree, [], {"real": real}.__getitem__)


@pytest.mark.parametrize("spec, message", [
    ({"blob": 0, "dtype": "|O", "shape": [2, 2]}, "malformed pool array"),
    ({"blob": 0, "dtype": "<f8", "shape": [3, 2]}, "bytes for shape"),
    ({"blob": 0, "dtype": "i4,f8", "shape": [2]}, "malformed pool array"),
    ({"blob": 1, "dtype": "<f8", "shape": [2, 2]}, "missing blob"),
])
def test_malformed_pool_arrays_are_refused(spec, message):
    tree = {"$pool": {"payload": {"y": spec}, "origin": {"blob": 0, "dtype": "<i8", "shape": [2]}, "weight": None,
                      "replicas": 2}}
    with pytest.raises(wire.WireError, match=message):
        wire.decode(tree, [np.zeros(4).tobytes()])
