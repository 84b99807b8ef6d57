"""The regression task: configuration, seeded data, the pools it stores, its hooks, its baselines."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from collapselab.contracts import registry
from collapselab.errors import ConfigError, TaskError
from collapselab.tasks.linear_regression.setting import Setting
from tests.helpers import run_strategy

TASK = "linear_regression"


def make(preset: str = "smoke", **overrides):
    return registry.make_task(TASK, preset, overrides)


# ----------------------------------------------------------------- configuration
BAD_VALUES = [
    ("dim", 0), ("n_samples", 0), ("trials", 0), ("noise_var", -1.0), ("generator_noise_var", -2.0),
    ("generator_samples", 0), ("generator_samples", -2), ("design", "sideways"), ("spectrum", "flat"),
    ("spectrum_decay", 0.0), ("spectrum_decay", -1.0), ("source_r", 0.0), ("data_seed", -2), ("dim", 2.5),
    ("noise_var", "loud"), ("spectrum_decay", float("inf")), ("examples", 0), ("examples", -2), ("examples", 1.5),
]


@pytest.mark.parametrize("key,value", BAD_VALUES)
def test_every_bad_value_gets_one_error_naming_its_key(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        make(**{key: value})


def test_sentinels_mean_the_real_data_and_zero_noise_is_a_valid_generator():
    setting = make().setting
    assert (setting.generator_samples, setting.generator_noise_var) == (20, 1.0)
    setting = make(generator_samples=7, generator_noise_var=0.0, noise_var=2.0).setting
    assert (setting.generator_samples, setting.generator_noise_var, setting.noise_var) == (7, 0.0, 2.0)
    assert make(n_samples=33).synthetic_size() == 33
    assert make(n_samples=33).example_budget == 33 and make(n_samples=33).fit_options["examples"] == 33  # -1: n_samples
    assert make(n_samples=33, examples=50).example_budget == 50


def test_the_budget_draw_is_whole_passes_then_one_permutation_per_trial():
    """A fit of B examples from a pool of n: B // n whole passes, then B % n distinct items drawn
    uniformly per trial; weights scale the drawn copies; whole passes leave the pool's own fit."""
    from collapselab.tasks.linear_regression import fitting

    task = make(trials=400).for_seed(0)
    real = task.real_pool()  # 20 items
    assert fitting.budget_weights(real, 40, np.random.default_rng(0)) is None  # two whole passes
    counts = fitting.budget_weights(real, 27, np.random.default_rng(0))
    assert counts.shape == (20, 400) and set(np.unique(counts)) == {1.0, 2.0}
    assert np.all(counts.sum(axis=0) == 27)  # exactly the budget in every trial
    assert not np.array_equal(counts[:, 0], counts[:, 1])  # each trial its own draw
    assert abs(counts.mean(axis=1) - 27 / 20).max() < 0.15  # uniform over the items
    weighted = real.with_weight(np.r_[np.zeros(5), np.full(15, 2.0)])
    drawn = fitting.budget_weights(weighted, 10, np.random.default_rng(1))
    assert np.all(drawn[:5] == 0) and np.all(drawn.sum(axis=0) == 20)  # weight 0 never drawn; weights scale
    with pytest.raises(TaskError, match="'examples' must be"):
        task.fit(real, {**task.fit_options, "examples": 0}, np.random.default_rng(0))


def test_power_spectrum_meets_the_capacity_and_source_conditions():
    setting = Setting.from_config({**make().config, "spectrum": "power", "spectrum_decay": 1.5, "source_r": 0.7,
                                   "dim": 50})
    k = np.arange(1, 51)
    assert np.allclose(setting.eigenvalues, k**-1.5)
    assert np.allclose(setting.eigenvalues * setting.power_signal**2, k ** (-1 - 2 * 1.5 * 0.7))


def test_every_preset_draws_its_data_from_the_run_seed():
    for preset in ("smoke", "cpu", "paper"):
        assert registry.task_class(TASK).presets[preset]["data_seed"] == -1


# ------------------------------------------------------------------ seeded data
def test_generation_zero_differs_between_seeds_and_is_shared_by_strategies(tmp_path):
    first = {}
    for seed in (0, 1):
        for strategy in ("replace", "accumulate"):
            first[seed, strategy] = run_strategy(tmp_path, TASK, strategy, seed=seed, generations=1).records[0].metrics
    assert first[0, "replace"] == first[0, "accumulate"]
    assert first[1, "replace"] == first[1, "accumulate"]
    assert first[0, "replace"]["loss"] != first[1, "replace"]["loss"]
    assert first[0, "replace"]["theory_loss"] != first[1, "replace"]["theory_loss"]  # the design differs too


def test_a_pinned_data_seed_gives_every_run_seed_the_same_data(tmp_path):
    losses = [run_strategy(tmp_path, TASK, "replace", seed=s, generations=1, overrides={"data_seed": 7}).curve()[0]
              for s in (0, 1)]
    assert losses[0] == losses[1]
    a, b = make(data_seed=7).for_seed(0), make(data_seed=7).for_seed(3)
    assert a.real_pool().equals(b.real_pool())
    assert not make().for_seed(0).real_pool().equals(make().for_seed(1).real_pool())


def test_the_fingerprint_describes_the_generator_not_one_draw():
    assert make().for_seed(0).data_fingerprint() == make().for_seed(1).data_fingerprint()
    assert make(data_seed=4).data_fingerprint()["data_seed"] == 4


# ---------------------------------------------------------------------- pools
def test_fixed_design_pools_hold_row_indices_and_labels(tmp_path):
    task = make(trials=50).for_seed(0)
    real = task.real_pool()
    assert real.keys == ("row", "y") and real["row"].dtype == np.int32 and real["row"].shape == (20, 50)
    assert np.array_equal(real["row"][:, 7], np.arange(20))
    run = run_strategy(tmp_path, TASK, "replace", generations=2, overrides={"trials": 50})
    pool_file = run.path / "pools" / "gen-0001.npz"
    assert pool_file.stat().st_size < 20 * 50 * 12 + 4096  # a row index and a label per item, no copy of a row
    fresh = make(design="fresh").real_pool()
    assert fresh.keys == ("x", "y") and fresh["x"].shape == (20, 200, 5)


def test_the_description_carries_the_config_with_its_sentinels_resolved():
    described = make(n_samples=30, noise_var=0.5).describe()
    assert described.config["generator_samples"] == described.config["examples"] == -1  # as written
    resolved = described.resolved_config
    assert (resolved["generator_samples"], resolved["examples"], resolved["generator_noise_var"]) == (30, 30, 0.5)
    assert resolved["data_seed"] == -1  # "the run seed": not a value of the config
    assert make(generator_samples=50).describe().resolved_config["generator_samples"] == 50


def test_each_design_the_config_accepts_is_a_kind_of_real_data_with_its_item_layout():
    from collapselab.tasks.linear_regression import data
    from collapselab.tasks.linear_regression.setting import Design

    with pytest.raises(ConfigError, match=r"config key 'design': Input should be 'fixed' or 'fresh', got 'random'") as error:
        make(design="random")
    assert [key for key, _ in error.value.problems] == ["design"]
    assert set(data.KINDS) == set(typing.get_args(Design))  # every design the config accepts is a kind
    for name, kind in data.KINDS.items():
        task = make(design=name, trials=7).for_seed(0)
        assert type(task._data) is kind and task.real_pool().keys == (kind.row_key, "y")
        rows = task._data.rows_for(3, np.random.default_rng(0))
        assert rows.shape[:2] == (3, 7) and task._data.predict(rows, task._data.w_star).shape == (3, 7)
    with pytest.raises(TypeError):
        data.RealData(make().setting, 0)  # the design's kind decides; the base alone is no design


def test_sufficient_statistics_give_the_direct_least_squares_fit():
    task = make(trials=30).for_seed(2)
    real = task.real_pool()
    model = task.fit(real, task.fit_options, np.random.default_rng(0)).model
    x = task._data.design
    direct = np.linalg.lstsq(x, real["y"], rcond=None)[0].T
    assert np.allclose(model[0], direct, rtol=1e-10, atol=1e-12)
    subset = real.subset(np.sort(np.argsort(np.random.default_rng(1).random((20, 30)), axis=0)[:12], axis=0))
    options = {"examples": 12, "ridge_lambda": 0.3, "regularise_generator": True}
    model = task.fit(subset, options, np.random.default_rng(0)).model
    for t in (0, 11, 29):
        rows = subset["row"][:, t]
        xt, yt = x[rows], subset["y"][:, t]
        expected = np.linalg.solve(xt.T @ xt / 12 + 0.3 * np.eye(5), xt.T @ yt / 12)
        assert np.allclose(model[0][t], expected, rtol=1e-10)


@pytest.mark.parametrize("design", ["fixed", "fresh"])
def test_a_budget_smaller_than_the_pool_fits_each_trials_own_draw(design):
    """27 examples from 20 items: per trial, least squares on the drawn multiset (some items twice)."""
    from collapselab.tasks.linear_regression import fitting

    task = make(trials=30, design=design).for_seed(3)
    real = task.real_pool()
    drawn = fitting.budget_weights(real, 27, np.random.default_rng(5))
    model = task.fit(real, {**task.fit_options, "examples": 27}, np.random.default_rng(5)).model
    for t in (0, 17, 29):
        xt = task._data.design if design == "fixed" else real["x"][:, t]
        root = np.sqrt(drawn[:, t])[:, None]
        expected = np.linalg.lstsq(root * xt, root[:, 0] * real["y"][:, t], rcond=None)[0]
        assert np.allclose(model[0][t], expected, rtol=1e-9)


def test_downstream_only_ridge_keeps_the_generator_unregularised():
    task = make().for_seed(0)
    real = task.real_pool()
    ols = task.fit(real, task.fit_options, np.random.default_rng(0)).model
    split = task.fit(real, {**task.fit_options, "ridge_lambda": 1.0, "regularise_generator": False}, np.random.default_rng(0)).model
    joint = task.fit(real, {**task.fit_options, "ridge_lambda": 1.0, "regularise_generator": True}, np.random.default_rng(0)).model
    assert np.array_equal(split[1], ols[1]) and np.array_equal(split[0], joint[0])
    assert np.array_equal(joint[0], joint[1]) and not np.allclose(split[0], split[1])


def test_minimum_norm_fit_below_the_dimension():
    task = make(dim=12, n_samples=5, design="fresh", trials=20).for_seed(0)
    real = task.real_pool()
    model = task.fit(real, task.fit_options, np.random.default_rng(0)).model[0]
    for t in (0, 19):
        expected = np.linalg.pinv(real["x"][:, t]) @ real["y"][:, t]
        assert np.allclose(model[t], expected, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------- hooks
def _late_samples(task, generations: int = 4):
    """Samples of a replace chain's generation ``generations`` model (labels drifted from w*)."""
    pool, rng = task.real_pool(), np.random.default_rng(5)
    for _ in range(generations):
        model = task.fit(pool, task.fit_options, rng).model
        pool = task.sample(model, task.synthetic_size(), rng, {})
    return pool


def _truth_error(task, pool) -> np.ndarray:
    return pool["y"] - task._data.predict(task._data.item_rows(pool), task._data.w_star)


def test_verifier_acceptance_falls_with_its_quality():
    task = make(trials=500).for_seed(0)
    real = task.real_pool()
    accepted = [float((task.verify(real, q, np.random.default_rng(0)) >= 0).mean()) for q in (1.0, 0.6, 0.3, 0.0)]
    assert abs(accepted[0] - 0.9545) < 0.01  # a perfect verifier accepts |noise| <= 2 sigma
    assert accepted == sorted(accepted, reverse=True) and accepted[-1] < accepted[0] - 0.1
    with pytest.raises(Exception, match="quality must be in"):
        task.verify(real, 1.5, np.random.default_rng(0))


def test_correction_moves_labels_toward_the_truth():
    task = make(trials=500).for_seed(1)
    samples = _late_samples(task)
    before = np.mean(_truth_error(task, samples) ** 2)
    assert task.correct(samples, 0.0, np.random.default_rng(0)).equals(samples)
    errors = [np.mean(_truth_error(task, task.correct(samples, g, np.random.default_rng(0))) ** 2) for g in (0.3, 0.7, 1.0)]
    assert before > errors[0] > errors[1] > errors[2]


def test_reward_ranks_true_labels_above_corrupted_ones():
    task = make(trials=500).for_seed(0)
    real = task.real_pool()
    corrupted = real.with_origin(1)
    payload = dict(corrupted.payload)
    payload["y"] = real["y"] + 3.0 * np.random.default_rng(0).standard_normal(real["y"].shape)
    corrupted = type(real)(payload, 1, replicas=real.replicas)
    assert np.mean(task.reward(real) > task.reward(corrupted)) > 0.8


def test_features_tell_drifted_synthetic_items_from_real_ones():
    task = make(trials=500).for_seed(0)
    real, late = task.features(task.real_pool()), task.features(_late_samples(task, 8))
    assert real.shape == (20, 500, 4)
    assert np.mean(late[..., 2] ** 2) > 2 * np.mean(real[..., 2] ** 2)  # residuals under the real-data fit
    np.testing.assert_allclose(late[..., 3], late[..., 2] ** 2)  # the squared residual, for a linear discriminant
