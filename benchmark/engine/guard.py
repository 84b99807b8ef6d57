"""Calling plugin code safely: every failure becomes one error naming the plugin, hook and generation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from collapselab.contracts.pool import Pool
from collapselab.errors import PluginError, TaskError


def call_strategy(strategy_name: str, hook: str, generation: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a strategy hook; any exception is re-raised as :class:`PluginError`."""
    try:
        return fn(*args)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(
            f"strategy {strategy_name!r} raised in {hook}() at generation {generation}: {type(exc).__name__}: {exc}"
        ) from exc


def check_pool(
    value: Any,
    who: str,
    like: Pool,
    allowed_origins: set[int],
    allow_empty: bool = False,
) -> Pool:
    """``value`` must be a non-empty Pool shaped like ``like`` with origins in ``allowed_origins``."""
    if not isinstance(value, Pool):
        raise PluginError(f"{who} returned {type(value).__name__}, expected a collapselab.Pool")
    if not allow_empty and len(value) == 0:
        raise PluginError(f"{who} returned an empty pool")
    if value.keys != like.keys or value.replicas != like.replicas:
        raise PluginError(
            f"{who} returned a pool with payload {value.keys} x{value.replicas} replicas; "
            f"the task's pools have {like.keys} x{like.replicas}"
        )
    for key in like.keys:
        if value[key].shape[1:] != like[key].shape[1:] or value[key].dtype != like[key].dtype:
            raise PluginError(
                f"{who} returned items whose {key!r} has shape/dtype {value[key].shape[1:]}/{value[key].dtype}; "
                f"the task's are {like[key].shape[1:]}/{like[key].dtype}"
            )
    bad = set(value.origin_counts()) - allowed_origins
    if bad:
        raise PluginError(f"{who} returned items of origin(s) {sorted(bad)}; allowed here: {sorted(allowed_origins)}")
    return value


def check_sample_size(value: Any, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PluginError(f"{who} returned {value!r}, expected a positive int")
    return value


def check_fit_options(value: Any, who: str, declared: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PluginError(f"{who} returned {type(value).__name__}, expected a dict of fit options")
    unknown = sorted(set(value) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise PluginError(f"{who} set unknown fit option(s) {unknown}; this task's options: {known}")
    return {**declared, **value}


def check_metrics(value: Any, task_name: str, generation: int) -> dict[str, float]:
    """Metrics must be a dict of finite numbers with ``loss``; NaN means training diverged."""
    if not isinstance(value, Mapping) or "loss" not in value:
        raise TaskError(f"task {task_name!r}: evaluate() must return a dict with 'loss' (generation {generation})")
    metrics = {}
    for key, number in value.items():
        number = float(number)
        if not math.isfinite(number):
            raise TaskError(
                f"task {task_name!r}: metric {key!r} is {number} at generation {generation} "
                "(training diverged?); the run stops here and earlier generations are kept"
            )
        metrics[str(key)] = number
    return metrics


def check_theory(value: Any, task_name: str, generation: int) -> dict[str, float]:
    """Closed-form metrics from ``Task.theory``: finite numbers that never replace ``loss``."""
    if not isinstance(value, Mapping) or "loss" in value:
        raise TaskError(f"task {task_name!r}: theory() must return a dict of extra metrics without 'loss'")
    checked = check_metrics({"loss": 0.0, **value}, task_name, generation)
    del checked["loss"]
    return checked
