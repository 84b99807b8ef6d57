"""Bounds before allocation: sizes a user (``--set``, ``--seeds``) or a strategy (``sample_size``,
``fit_options``, weights, ``fresh_real``) chose are checked against what the machine can hold,
and absurd numbers are one clear error, never a MemoryError, an overflow or a LinAlgError."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collapselab import Pool
from collapselab.cli.main import main
from collapselab.contracts import memory, registry
from collapselab.contracts.params import INT_LIMIT, MAX_SEED, coerce, parse_seeds, parse_value
from collapselab.engine import rundir
from collapselab.errors import ConfigError, ParameterError, PluginError, PoolError
from collapselab.storage import strict_json
from tests.helpers import run_strategy

TASK = "linear_regression"

HOSTILE = '''
import numpy as np
from collapselab import Strategy

class HugeSample(Strategy):
    name = "huge-sample"
    def sample_size(self, ctx):
        return 10**12
    def training_pool(self, ctx):
        return ctx.accumulated()

class AbsurdSample(Strategy):
    name = "absurd-sample"
    def sample_size(self, ctx):
        return 10**400
    def training_pool(self, ctx):
        return ctx.accumulated()

class HugeOption(Strategy):
    name = "huge-option"
    def fit_options(self, ctx):
        return {"ridge_lambda": 10**400}
    def training_pool(self, ctx):
        return ctx.accumulated()

class HugeWeight(Strategy):
    name = "huge-weight"
    def training_pool(self, ctx):
        pool = ctx.accumulated()
        return pool.with_weight(np.full(len(pool), 1e308))

class HugeFresh(Strategy):
    name = "huge-fresh"
    uses_extra_real_data = True
    def training_pool(self, ctx):
        return ctx.fresh_real(10**12)
'''


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    path = tmp_path_factory.mktemp("plugins") / "hostile.py"
    path.write_text(HOSTILE)
    return lambda name: f"{path}:{name}"


# ---------------------------------------------------------------- task configuration
@pytest.mark.parametrize("key, value", [("dim", 1e8), ("trials", 1e12), ("n_samples", 1e15), ("generator_samples", 1e15)])
def test_config_sizes_the_machine_cannot_hold_are_refused_before_allocation(key, value):
    registry.task_class(TASK)  # imported before the clock starts
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        registry.make_task(TASK, "smoke", {key: value})
    assert time.perf_counter() - start < 1.0  # arithmetic, not an allocation
    message = str(info.value)
    assert f"{key}={int(value)}" in message and "needs at least" in message and "\n" not in message


@pytest.mark.parametrize("setting", ["dim=1e8", "trials=1e12", "dim=1e300", "n_samples=1e999", "trials=1" + "0" * 400])
def test_absurd_set_values_are_one_line_at_the_command_line(tmp_path, capsys, setting):
    code = main(["run", "--task", TASK, "--strategy", "replace", "--preset", "smoke", "--set", setting,
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("collapselab: error:") and err.count("\n") == 1, err
    assert setting.split("=")[0] in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_the_memory_check_names_only_the_keys_that_need_the_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)
    with pytest.raises(ConfigError) as info:
        registry.make_task(TASK, "smoke", {"dim": 1_000_000, "noise_var": 2.0})
    assert "dim=1000000" in str(info.value) and "noise_var" not in str(info.value)
    for preset in ("smoke", "cpu", "paper"):  # the shipped presets fit in 1 GiB
        registry.make_task(TASK, preset, {})


def test_the_estimate_is_a_lower_bound_of_what_a_run_holds():
    task = registry.make_task(TASK, "cpu", {}).for_seed(0)
    pool = task.real_pool()
    held = pool["y"].nbytes + task._data.design.nbytes
    assert task.memory_estimate(task.config) >= held


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 10**6, 2**40, 10**30, 10**400])
def test_sizes_are_formatted_in_a_few_characters(size):
    text = memory.format_bytes(size)
    assert len(text) <= 14 and ("bytes" in text or "iB" in text)


# ---------------------------------------------------------------- strategies
def test_a_sample_size_beyond_memory_is_refused_before_sampling(tmp_path, hostile):
    with pytest.raises(PluginError) as info:
        run_strategy(tmp_path, TASK, hostile("HugeSample"), generations=1)
    message = str(info.value)
    assert "sample_size()" in message and "1,000,000,000,000 items" in message and "needs at least" in message
    run = rundir.load_run(next(tmp_path.rglob("manifest.json")).parent)
    assert run.manifest.status == "failed" and len(run.records) == 1  # generation 0 kept


def test_an_absurd_sample_size_is_one_line(tmp_path, hostile):
    with pytest.raises(PluginError, match=r"sample_size\(\) returned .*an integer of about 401 digits"):
        run_strategy(tmp_path, TASK, hostile("AbsurdSample"), generations=1)


def test_a_fit_option_of_10_to_the_400_is_a_plugin_error(tmp_path, hostile):
    with pytest.raises(PluginError, match="fit option 'ridge_lambda': expects a finite number, got an integer of about 401"):
        run_strategy(tmp_path, TASK, hostile("HugeOption"), generations=1)


def test_weights_of_1e308_are_refused_not_a_linalg_error(tmp_path, hostile):
    with pytest.raises(PluginError, match="weights must be finite, non-negative and at most"):
        run_strategy(tmp_path, TASK, hostile("HugeWeight"), generations=1)


def test_fresh_real_data_beyond_memory_is_refused(tmp_path, hostile):
    with pytest.raises(PluginError, match=r"fresh_real\(1000000000000\): 1,000,000,000,000 items"):
        run_strategy(tmp_path, TASK, hostile("HugeFresh"), generations=1)


@pytest.mark.parametrize("weight", [1e308, np.inf, np.nan, -1.0, 1e13])
def test_pool_weights_are_finite_non_negative_and_bounded(weight):
    with pytest.raises(PoolError):
        Pool({"x": np.zeros((3, 2))}, -1, np.array([1.0, weight, 1.0]))
    Pool({"x": np.zeros((3, 2))}, -1, np.array([0.0, 1e12, 1e-300]))


# ---------------------------------------------------------------- settings and seeds
@given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_coerced_numbers_are_in_range_or_a_parameter_error(value):
    for default in (1, 1.0):
        try:
            result = coerce(value, default)
        except ParameterError:
            continue
        assert type(result) is type(default)
        if isinstance(result, int):
            assert -INT_LIMIT - 1 <= result <= INT_LIMIT
        else:
            assert np.isfinite(result)


def test_literals_of_thousands_of_digits_or_levels_are_a_parameter_error():
    with pytest.raises(ParameterError, match="5000 digits"):
        parse_value("7" * 5000)
    with pytest.raises(ParameterError, match="nested too deeply"):
        parse_value("[" * 100_000 + "]" * 100_000)
    assert parse_value("12") == 12 and parse_value("1e-3") == 1e-3 and parse_value("abc") == "abc"


def test_seed_ranges_parse_in_linear_time():
    start = time.perf_counter()
    seeds = parse_seeds("0-200000,5,200001")
    assert time.perf_counter() - start < 2.0  # quadratic: minutes
    assert seeds == [*range(200001), 200001]
    assert parse_seeds("3,1-4,0") == [3, 1, 2, 4, 0]


@pytest.mark.parametrize("text", [str(MAX_SEED + 1), f"0-{10**19}", "1" * 5000, "0-2000000", "5-1", "-3", "a"])
def test_seeds_beyond_the_bounds_are_refused(text):
    with pytest.raises(ParameterError):
        parse_seeds(text)


def test_the_largest_seed_round_trips_through_a_result_file():
    assert parse_seeds(str(MAX_SEED)) == [MAX_SEED]
    assert strict_json.loads(strict_json.dumps({"seed": MAX_SEED})) == {"seed": MAX_SEED}


def test_a_seed_above_18_digits_is_one_line_and_writes_nothing(tmp_path, capsys):
    code = main(["run", "--task", TASK, "--strategy", "replace", "--preset", "smoke", "--seeds", "12345678901234567890",
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "is too large" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
