"""Which tasks an entry cannot run on, and why: the site tells "not applicable" from "not run".

The rule is the sweep's (:func:`collapselab.operations.execution.sweep.inapplicable_reason`): a strategy
cannot run on a task that lacks a hook it requires or whose configuration its own ``check_task``
refuses, and a strategy that draws fresh real data cannot run on a task without a reserve of it.
The builder never runs submitted code, so the verdict comes from:

- the submission's own declaration ``uses_extra_real_data`` against the task's hooks (data only);
- for an entry that runs a shipped baseline (a strategy of the ``collapselab.baselines``
  package, by name), that baseline's ``check_task``, in this process: shipped code, with the
  entry's parameters, on the task's description at the board's preset.

Any other entry's missing task is "not run": nothing it submitted says whether it could run there.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from collapselab.contracts import registry
from collapselab.contracts.task import TaskDescription
from collapselab.errors import CollapseLabError, PluginError
from collapselab.leaderboard import baselines


@functools.lru_cache(maxsize=16)
def _description(task: str, preset: str) -> TaskDescription | None:
    try:
        return registry.make_task(task, preset).describe()
    except CollapseLabError:
        return None


def reason(strategy: Mapping[str, Any], task: str, preset: str, shipped: frozenset[str]) -> str | None:
    """Why the submitted ``strategy`` section (name, params, uses_extra_real_data) cannot run on ``task``,
    or ``None`` when it can or nothing says it cannot (``shipped``: the shipped baselines' names)."""
    described = _description(task, preset)
    if described is None:
        return None
    if strategy.get("uses_extra_real_data") is True and "fresh_real_pool" not in described.hooks:
        return f"task {task!r} has no reserve of fresh real data for {strategy['name']!r}"
    if strategy.get("name") not in shipped:
        return None
    try:
        built = registry.strategy_class(str(strategy["name"]))(**dict(strategy.get("params") or {}))
    except CollapseLabError:  # parameters the baseline does not take say nothing about the task
        return None
    try:
        built.check_task(described)
    except PluginError as exc:
        return str(exc)
    return None


def not_applicable(strategy: Mapping[str, Any], tasks: Sequence[str], preset: str) -> dict[str, str]:
    """task -> why the entry cannot run there, for the ``tasks`` it has no section for."""
    shipped = frozenset(baselines.shipped())
    found = {task: reason(strategy, task, preset, shipped) for task in tasks}
    return {task: why for task, why in found.items() if why is not None}
