"""A strategy hook's failures become one PluginError that names the strategy, hook and generation;
whether context is added is decided by the error's ``plugin`` field, never by its text."""

from __future__ import annotations

import sys

import pytest

from collapselab.engine import guard, wire
from collapselab.errors import PluginError


def _raise(exc: BaseException) -> None:
    raise exc


def test_an_exception_in_a_hook_names_the_strategy_hook_and_generation() -> None:
    with pytest.raises(PluginError) as info:
        guard.call_strategy("picky", "training_pool", 3, _raise, ValueError("bad index"))
    assert str(info.value) == "strategy 'picky' raised in training_pool() at generation 3: ValueError: bad index"
    assert info.value.plugin == "picky"


def test_an_error_already_blamed_on_this_strategy_passes_unchanged() -> None:
    original = PluginError("strategy 'picky' named an unknown pool 'synthetic:9'", plugin="picky")
    with pytest.raises(PluginError) as info:
        guard.call_strategy("picky", "training_pool", 3, _raise, original)
    assert info.value is original


def test_text_that_names_the_strategy_is_not_an_attribution() -> None:
    """A plugin cannot skip the context by writing the strategy's name into its own message."""
    forged = PluginError("strategy 'picky' is fine")
    with pytest.raises(PluginError) as info:
        guard.call_strategy("picky", "training_pool", 3, _raise, forged)
    assert info.value is not forged
    assert str(info.value) == "strategy 'picky' in training_pool() at generation 3: strategy 'picky' is fine"
    assert info.value.plugin == "picky"


def test_an_error_blamed_on_another_strategy_gets_this_ones_context() -> None:
    with pytest.raises(PluginError) as info:
        guard.call_strategy("picky", "__init__", 0, _raise, PluginError("inner", plugin="other"))
    assert info.value.plugin == "picky"
    assert str(info.value).startswith("strategy 'picky' in __init__() at generation 0: ")


def test_sys_exit_in_a_hook_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"called sys.exit\(4\) in training_pool\(\) at generation 1") as info:
        guard.call_strategy("picky", "training_pool", 1, sys.exit, 4)
    assert info.value.plugin == "picky"


def test_keyboard_interrupt_passes_through() -> None:
    with pytest.raises(KeyboardInterrupt):
        guard.call_strategy("picky", "training_pool", 1, _raise, KeyboardInterrupt())


@pytest.mark.parametrize("plugin", ["picky", None])
def test_the_wire_carries_the_attribution(plugin: str | None) -> None:
    back = wire.error_from(wire.error_header(PluginError("strategy 'picky' broke", plugin=plugin)))
    assert (str(back), back.plugin) == ("strategy 'picky' broke", plugin)


def test_a_malformed_attribution_on_the_wire_is_ignored() -> None:
    back = wire.error_from({"error": "boom", "plugin": ["picky"]})
    assert (str(back), back.plugin) == ("boom", None)
