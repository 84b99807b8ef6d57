"""The split helper (train / validation / reserve / test) and model selection on validation only."""

from __future__ import annotations

import numpy as np
import pytest

from collapselab.engine import seeding
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.linear_regression import LinearRegressionTask
from collapselab.toolkit.splits import UNUSED, IndexSplit, carve, sha256_arrays
from tests.perf.bench_generation0 import budget_curve


# ------------------------------------------------------------------ the helper
def test_carve_cuts_consecutive_runs_and_the_rest_covers_the_population() -> None:
    order = np.random.default_rng(0).permutation(20)
    split = carve(order, [("test", 5), ("validation", 3), ("train", 8)], "reserve")
    assert split.sizes() == {"test": 5, "validation": 3, "train": 8, "reserve": 4}
    assert np.array_equal(split.test, order[:5]) and np.array_equal(split.validation, order[5:8])
    assert np.array_equal(split.train, order[8:16]) and np.array_equal(split.reserve, order[16:])
    assert np.array_equal(np.sort(np.concatenate(list(split.parts.values()))), np.arange(20))
    assert carve(7, [("test", 2)]).sizes() == {"test": 2, UNUSED: 5}
    ordered = split.sorted()
    assert all(np.array_equal(ordered[p], np.sort(split[p])) for p in split.parts)


def test_fingerprints_follow_the_indices_and_the_content() -> None:
    order = np.random.default_rng(0).permutation(20)
    split = carve(order, [("test", 5), ("train", 10)], "reserve")
    assert split.sha256() == carve(order.copy(), [("test", 5), ("train", 10)], "reserve").sha256()
    assert split.sha256() != carve(order, [("test", 6), ("train", 9)], "reserve").sha256()
    assert split.sha256() != carve(np.roll(order, 1), [("test", 5), ("train", 10)], "reserve").sha256()
    assert split.sha256() != split.sorted().sha256()  # the order of a part is part of what a task trains on
    a = np.arange(6, dtype=np.int64)
    assert sha256_arrays(a) == sha256_arrays(a.copy()) != sha256_arrays(a.reshape(2, 3)) != sha256_arrays(a + 1)


def test_sizes_that_ask_for_too_much_are_one_config_error() -> None:
    with pytest.raises(ConfigError, match="the digits holds 10 items; the split asks for 12 .test 4, train 8"):
        carve(10, [("test", 4), ("train", 8)], "reserve", "the digits")
    with pytest.raises(ConfigError, match=">= 0"):
        carve(10, [("test", -1)])


def test_overlapping_or_partial_parts_are_refused() -> None:
    """Hand-made parts that share an item, leave one out, or point outside the population never
    become a split: the constructor names the parts at fault."""
    with pytest.raises(TaskError, match="'train' and 'test' share items"):
        IndexSplit(6, {"train": [0, 1, 2, 3], "test": [3, 4, 5]})
    with pytest.raises(TaskError, match="'validation' and 'validation' share items"):
        IndexSplit(4, {"train": [0, 1], "validation": [2, 2, 3]})
    with pytest.raises(TaskError, match="leave 1 of 6 items in no part"):
        IndexSplit(6, {"train": [0, 1, 2], "test": [4, 5]})
    with pytest.raises(TaskError, match="outside range"):
        IndexSplit(3, {"train": [0, 1, 3]})
    with pytest.raises(TaskError, match="permutation"):
        carve(np.array([0, 1, 1, 3]), [("test", 1)])
    with pytest.raises(TaskError, match="names must differ"):
        carve(5, [("train", 1), ("train", 2)])
    split = IndexSplit(3, {"train": [2, 0], "test": [1]})
    with pytest.raises(ValueError):
        split.train[0] = 1  # the index sets are read-only


# ------------------------------------------------------- selection reads validation only
class LockedTestSplit(LinearRegressionTask):
    """The regression task with its test door locked: selection must not knock."""

    def evaluate(self, model: np.ndarray) -> dict[str, float]:
        raise AssertionError("model selection read the test split")


def test_the_budget_curve_never_reads_the_test_split() -> None:
    task = LockedTestSplit("smoke")
    rows = budget_curve(task, [0.5, 1.0, 2.0], seed=3)
    assert [r["examples"] for r in rows] == [10, 20, 40]
    fitted = LinearRegressionTask("smoke").for_seed(3)
    for r in rows:
        options = {**fitted.fit_options, "examples": r["examples"]}
        model = fitted.fit(fitted.real_pool(), options, seeding.stream(3, 0, "fit")).model
        assert r["loss"] == fitted.validate(model)["loss"] != fitted.evaluate(model)["loss"]


# --------------------------------------------------------- the regression's validation draw
def test_regression_validation_is_an_independent_draw_that_leaves_the_data_unchanged() -> None:
    task = LinearRegressionTask("cpu").for_seed(2)
    rows, y = task._data.validation
    real = task.real_pool()
    assert y.shape == real["y"].shape and not np.allclose(y, real["y"])  # new labels of the same design
    untouched = LinearRegressionTask("cpu").for_seed(2)
    assert np.array_equal(untouched.real_pool()["y"], real["y"])
    assert np.array_equal(untouched._data.w_star, task._data.w_star)


def test_regression_validation_loss_estimates_the_fixed_design_excess_risk() -> None:
    """mse - sigma^2 on new labels of the design rows is unbiased for (w - w*)^T (X^T X / T) (w - w*):
    with 1,000 trials of 100 rows its error is a few thousandths."""
    task = LinearRegressionTask("cpu").for_seed(5)
    model = task.fit(task.real_pool(), task.fit_options, np.random.default_rng(0)).model
    x, delta = task._data.design, model[0] - task._data.w_star
    exact = float(np.mean(np.sum((delta @ x.T) ** 2, axis=1) / len(x)))
    found = task.validate(model)
    assert found["mse"] == pytest.approx(found["loss"] + 1.0)
    assert abs(found["loss"] - exact) < 0.02 and 0.05 < exact < 0.2
