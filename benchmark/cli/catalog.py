"""``collapselab list`` and ``collapselab show task NAME | strategy NAME``: what is installed."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from typing import Any

from collapselab.contracts import registry
from collapselab.errors import CollapseLabError
from collapselab.operations.plugins import catalog

WIDTH = 100


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _value(value: Any) -> str:
    return "-" if value is None else str(value)


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def cmd_list(args: argparse.Namespace) -> int:
    what = args.what
    if what in ("tasks", "all"):
        rows = []
        for name in registry.task_names():
            try:
                cls = registry.task_class(name)
            except CollapseLabError as exc:
                rows.append([name, "-", "(unavailable)", "-", str(exc)])
                continue
            hint = registry.install_hint(cls)
            modality = cls.metadata.modality if not hint else f"{cls.metadata.modality} (unavailable: {hint})"
            rows.append([name, cls.version, modality, ", ".join(cls.presets), cls.metadata.citation])
        print(_table(rows, ["task", "version", "modality", "presets", "source"]))
    if what == "all":
        print()
    if what in ("strategies", "all"):
        rows = []
        for name in registry.strategy_names():
            try:
                strategy = registry.strategy_class(name)
            except CollapseLabError as exc:
                rows.append([name, "-", "(unavailable)", str(exc)])
                continue
            params = ", ".join(f"{k}={v}" for k, v in strategy.parameters.items()) or "-"
            rows.append([name, params, "yes (oracle)" if strategy.uses_extra_real_data else "-", strategy.citation])
        print(_table(rows, ["strategy", "parameters (defaults)", "fresh real data", "source"]))
    return 0


def _side_by_side(per_preset: Mapping[str, Mapping[str, Any] | None], label: str,
                  described: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """One row per key, one column per preset; ``described``: heading -> key -> text, more columns after them."""
    presets = list(per_preset)
    keys = list(dict.fromkeys(k for config in per_preset.values() if config for k in config))
    extra = described or {}
    rows = [[key, *(_value((per_preset[p] or {}).get(key)) for p in presets), *(texts.get(key, "") for texts in extra.values())]
            for key in keys]
    return _table(rows, [label, *presets, *extra])


def task_text(info: Mapping[str, Any]) -> str:
    lines = [f"{info['name']} v{info['version']} · {info['modality']}", _wrap(info["description"])]
    if info["summary"] and info["summary"] != info["description"]:
        lines += ["", _wrap(info["summary"])]
    lines += ["", f"source: {info['citation']}",
              f"primary metric: loss = {info['loss_unit']}, on held-out real data (lower is better)"]
    if info["secondary_metrics"]:
        lines.append("secondary metrics:")
        lines.append(textwrap.indent(_table([[k, v] for k, v in info["secondary_metrics"].items()], ["metric", "meaning"]), "  "))
    lines += ["", "configuration (one column per preset; change a key with --set KEY=VALUE):",
              textwrap.indent(_side_by_side(info["presets"], "key", {"type": info["config_types"],
                                                                     "meaning": info["config_meanings"]}), "  ")]
    options = info["fit_options"]
    if any(options.values()):
        lines += ["", "fit options (a strategy may set them each generation through fit_options(ctx)):",
                  textwrap.indent(_side_by_side(options, "option"), "  ")]
    else:
        lines += ["", "fit options: none (strategies cannot change how this task fits)"]
    sampling = info["sampling_options"]
    if any(sampling.values()):
        lines += ["", "sampling options (a strategy may set them each generation through sampling_options(ctx)):",
                  textwrap.indent(_side_by_side(sampling, "option"), "  ")]
    steps, examples = info["step_budget"], info["example_budget"]
    if any(steps.values()):
        shown = ", ".join(f"{preset} {_value(value)}" for preset, value in steps.items())
        lines += ["", f"compute budget of one fit (optimiser steps): {shown}; more is marked as extra compute"]
    elif any(examples.values()):
        shown = ", ".join(f"{preset} {_value(value)}" for preset, value in examples.items())
        lines += ["", f"compute budget of one fit (examples drawn from the pool): {shown}; more is marked as extra compute"]
    return "\n".join(lines)


def strategy_text(info: Mapping[str, Any]) -> str:
    lines = [f"{info['name']}", f"source: {info['citation'] or '(no citation given)'}"]
    if info["uses_extra_real_data"]:
        lines.append("draws fresh real data beyond the real pool (an oracle: its runs land in the fresh-data track)")
    if info["parameters"]:
        lines.append("parameters (set with NAME[key=value,...]):")
        lines.append(textwrap.indent(_table([[k, _value(v)] for k, v in info["parameters"].items()], ["parameter", "default"]), "  "))
    else:
        lines.append("parameters: none")
    lines.append(f"hooks beyond training_pool: {', '.join(info['hooks']) or 'none'}")
    if info["summary"]:
        lines += ["", _wrap(info["summary"])]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    if args.kind == "task":
        print(task_text(catalog.task_info(args.name)))
    else:
        print(strategy_text(catalog.strategy_info(args.name)))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("list", help="list tasks and strategies")
    p.add_argument("what", nargs="?", choices=["tasks", "strategies", "all"], default="all")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one task (presets, config keys, fit options) or strategy (parameters, citation)")
    p.add_argument("kind", choices=["task", "strategy"])
    p.add_argument("name", help="a task name, or a strategy name or path/to/file.py:ClassName")
    p.set_defaults(func=cmd_show)
