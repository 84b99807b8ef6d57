"""Pool: provenance bookkeeping, replicas, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from collapselab import REAL, Pool
from collapselab.contracts.selection import subsample, top_k
from collapselab.errors import PoolError


def make(n: int, origin: int, replicas: int = 1, start: float = 0.0) -> Pool:
    shape = (n, replicas) if replicas > 1 else (n,)
    values = start + np.arange(np.prod(shape), dtype=float).reshape(shape)
    return Pool({"v": values}, origin, replicas=replicas)


def test_concat_subset_and_origin_counts():
    pool = Pool.concat([make(3, REAL), make(2, 1, start=10), make(4, 2, start=20)])
    assert len(pool) == 9
    assert pool.origin_counts() == {-1: 3, 1: 2, 2: 4}
    assert pool.by_origin(1)["v"].tolist() == [10.0, 11.0]
    assert pool.by_origin([REAL, 2]).origin_counts() == {-1: 3, 2: 4}
    assert pool.subset([8, 0])["v"].tolist() == [23.0, 0.0]


def test_pool_is_immutable():
    pool = make(3, REAL)
    with pytest.raises(ValueError):
        pool["v"][0] = 5.0
    with pytest.raises(ValueError):
        pool.origin[0] = 3


@pytest.mark.parametrize(
    "build",
    [
        lambda: Pool({"a": np.zeros(3), "b": np.zeros(4)}, REAL),
        lambda: Pool({"a": np.zeros(3)}, [REAL, REAL]),
        lambda: Pool({"a": np.zeros(3)}, -2),
        lambda: Pool({"a": np.zeros((3, 2))}, REAL, replicas=3),
        lambda: Pool({"a": np.zeros(3)}, REAL, weight=np.array([1.0, np.nan, 1.0])),
        lambda: Pool({"__origin__": np.zeros(3)}, REAL),
    ],
)
def test_inconsistent_pools_are_rejected(build):
    with pytest.raises(PoolError):
        build()


def test_concat_rejects_mismatched_payloads():
    with pytest.raises(PoolError, match="payload keys"):
        Pool.concat([make(2, REAL), Pool({"w": np.zeros(2)}, 1)])
    with pytest.raises(PoolError, match="replicas"):
        Pool.concat([make(2, REAL, replicas=2), make(2, 1, replicas=3)])


def test_weights_survive_concat_and_subset():
    a = make(2, REAL).with_weight(np.array([0.5, 2.0]))
    b = make(2, 1)
    joined = Pool.concat([a, b])
    assert joined.weight.tolist() == [0.5, 2.0, 1.0, 1.0]
    assert joined.subset([1, 3]).weight.tolist() == [2.0, 1.0]


def test_save_load_round_trip(tmp_path):
    pool = Pool.concat([make(3, REAL, replicas=2), make(2, 4, replicas=2)]).with_weight(np.arange(5.0))
    pool.save(tmp_path / "p.npz")
    loaded = Pool.load(tmp_path / "p.npz")
    assert loaded.equals(pool)
    assert loaded.replicas == 2


def test_load_reports_corrupt_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(PoolError, match="bad.npz"):
        Pool.load(path)


def test_per_replica_subset_keeps_provenance_per_row():
    pool = Pool.concat([make(3, REAL, replicas=2), make(3, 1, replicas=2, start=100)])
    picked = pool.subset(np.array([[0, 2], [4, 3]]))
    assert picked.origin.tolist() == [REAL, 1]
    assert picked["v"].tolist() == [[0.0, 5.0], [102.0, 101.0]]
    with pytest.raises(PoolError, match="one origin"):
        pool.subset(np.array([[0, 4]]))


def test_subsample_is_uniform_within_each_replica():
    pool = Pool.concat([make(40, REAL, replicas=3), make(60, 1, replicas=3, start=1000)])
    rng = np.random.default_rng(0)
    hits = np.zeros((100, 3))
    for _ in range(400):
        picked = subsample(pool, 25, rng)
        assert len(picked) == 25
        for r in range(3):
            column = picked["v"][:, r]
            assert len(np.unique(column)) == 25  # without replacement
            index = np.where(column >= 1000, 40 + (column - 1000 - r) / 3, (column - r) / 3).astype(int)
            hits[index, r] += 1
    # every item is picked with probability 25/100 in every replica
    assert np.allclose(hits / 400, 0.25, atol=0.1)
    assert abs(hits.mean() / 400 - 0.25) < 1e-12


def test_top_k_ranks_each_replica():
    pool = make(4, 1, replicas=2)
    scores = np.array([[0.0, 3.0], [5.0, 1.0], [1.0, 2.0], [4.0, 0.0]])
    best = top_k(pool, scores, 2)
    assert best["v"].tolist() == [[2.0, 1.0], [6.0, 5.0]]
    assert top_k(make(4, 1), np.array([1.0, 9.0, 3.0, 2.0]), 2)["v"].tolist() == [1.0, 2.0]
    with pytest.raises(PoolError, match="NaN"):
        top_k(make(2, 1), np.array([np.nan, 1.0]), 1)


def test_pools_made_from_sealed_pools_remember_how_and_others_do_not():
    real, first = make(3, REAL, replicas=2).sealed(), make(2, 1, replicas=2, start=10).sealed()
    joined = Pool.concat([real, first])
    picked = joined.subset(np.array([[3, 4], [0, 2]]))
    assert picked.derives_from([real, first]) and not picked.derives_from([real])
    assert picked.subset([1]).lineage.sources == (joined,)  # a selection of a selection: one selection
    assert np.array_equal(picked.subset([1])["v"], joined.subset(picked.subset([1]).lineage.index)["v"])
    # items that did not come from a sealed pool by concat or subset carry no lineage
    assert Pool.concat([real, make(2, 1, replicas=2)]).lineage is None
    assert joined.with_origin(1).lineage is None and Pool(real.payload, REAL, replicas=2).lineage is None
    assert not joined.with_origin(REAL).derives_from([real, first])


@pytest.mark.parametrize("selection", ["1-D", "per replica", "per replica across parts"])
def test_a_selection_of_a_concatenation_is_gathered_from_its_parts_exactly(selection):
    rng = np.random.default_rng(3)
    parts = [Pool({"v": rng.standard_normal((n, 4, 2)), "k": rng.integers(0, 9, (n, 4)).astype(np.int32)}, origin,
                  replicas=4).sealed() for n, origin in [(5, REAL), (3, 1), (6, 1)]]
    joined = Pool.concat(parts)
    eager = {key: np.concatenate([p[key] for p in parts]) for key in joined.keys}
    if selection == "1-D":
        index = np.array([13, 0, 6, 7, 5])
    elif selection == "per replica":
        index = np.stack([rng.choice(np.flatnonzero(joined.origin == o), size=4) for o in (1, REAL, 1)])
    else:
        index = np.array([[5, 9, 7, 13], [0, 4, 2, 1]])  # row 0 takes items of two parts of origin 1
    picked = joined.subset(index)
    for key in joined.keys:
        expected = eager[key][index] if index.ndim == 1 else eager[key][index, np.arange(4)]
        assert picked[key].dtype == expected.dtype and np.array_equal(picked[key], expected)
    assert np.array_equal(joined["v"], eager["v"])


def test_a_uniform_subsample_takes_the_items_a_full_sort_would_even_with_ties():
    from collapselab.contracts.selection import _smallest

    rng = np.random.default_rng(5)
    for keys in (rng.random((40, 300)), rng.integers(0, 3, (40, 300)).astype(float)):  # coarse keys: ties at the cut
        for k in (1, 7, 20, 40):
            expected = np.sort(np.argsort(keys, axis=0)[:k], axis=0)
            assert np.array_equal(np.sort(_smallest(keys, k), axis=0), expected)
