"""Calling plugin code safely: every failure becomes one error naming the plugin, hook and generation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from collapselab.contracts import memory
from collapselab.contracts.params import coerce, shown
from collapselab.contracts.pool import Pool
from collapselab.errors import ParameterError, PluginError, TaskError


def call_strategy(strategy_name: str, hook: str, generation: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a strategy hook (in the strategy's own process); any exception, ``sys.exit()`` included, is
    re-raised as :class:`PluginError`. Only ``KeyboardInterrupt`` passes through."""
    try:
        return fn(*args)
    except PluginError as exc:
        if exc.plugin == strategy_name:
            raise
        raise PluginError(f"strategy {strategy_name!r} in {hook}() at generation {generation}: {exc}",
                          plugin=strategy_name) from exc
    except SystemExit as exc:
        raise PluginError(
            f"strategy {strategy_name!r} called sys.exit({exc.code!r}) in {hook}() at generation {generation}; "
            "a strategy must return, not exit", plugin=strategy_name,
        ) from exc
    except Exception as exc:
        raise PluginError(
            f"strategy {strategy_name!r} raised in {hook}() at generation {generation}: {type(exc).__name__}: {exc}",
            plugin=strategy_name,
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


def check_sample_size(value: Any, who: str, item_bytes: int | None = None) -> int:
    """A positive int whose items (``item_bytes`` each, when given) fit in this machine's memory."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PluginError(f"{who} returned {shown(value)}, expected a positive int")
    problem = None if item_bytes is None else memory.items_problem(value, item_bytes)
    if problem is not None:
        raise PluginError(f"{who} returned {problem}")
    return value


def check_options(value: Any, who: str, declared: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Options a strategy set (``kind``: "fit" or "sampling"): known keys, values of the declared
    type (coerced like command-line values), merged over the task's defaults."""
    if not isinstance(value, Mapping):
        raise PluginError(f"{who} returned {type(value).__name__}, expected a dict of {kind} options")
    unknown = sorted(set(value) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise PluginError(f"{who} set unknown {kind} option(s) {unknown}; this task's {kind} options: {known}")
    merged = dict(declared)
    for key, option in value.items():
        try:
            merged[key] = coerce(option, declared[key])
        except ParameterError as exc:
            raise PluginError(f"{who}: {kind} option {key!r}: {exc}") from None
    return merged


METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def check_metrics(
    value: Any, task_name: str, generation: int, bounds: Mapping[str, tuple[float | None, float | None]] | None = None
) -> dict[str, float]:
    """Metrics must be a dict of finite numbers with ``loss``, named like identifiers, within the
    task's declared ``bounds``; NaN means training diverged."""
    if not isinstance(value, Mapping) or "loss" not in value:
        raise TaskError(f"task {task_name!r}: evaluate() must return a dict with 'loss' (generation {generation})")
    metrics = {}
    for key, number in value.items():
        if not isinstance(key, str) or not METRIC_NAME.fullmatch(key):
            raise TaskError(f"task {task_name!r}: metric name {key!r} must be a lowercase identifier")
        number = float(number)
        if not math.isfinite(number):
            raise TaskError(
                f"task {task_name!r}: metric {key!r} is {number} at generation {generation} "
                "(training diverged?); the run stops here and earlier generations are kept"
            )
        low, high = (bounds or {}).get(key, (None, None))
        if (low is not None and number < low) or (high is not None and number > high):
            raise TaskError(f"task {task_name!r}: metric {key!r} = {number} at generation {generation} is outside "
                            f"its declared range [{low}, {high}]")
        metrics[key] = number
    return metrics


def check_theory(value: Any, task_name: str, generation: int) -> dict[str, float]:
    """Closed-form metrics from ``Task.theory``: finite numbers that never replace ``loss``."""
    if not isinstance(value, Mapping) or "loss" in value:
        raise TaskError(f"task {task_name!r}: theory() must return a dict of extra metrics without 'loss'")
    checked = check_metrics({"loss": 0.0, **value}, task_name, generation)
    del checked["loss"]
    return checked
