"""``collapselab check SPEC``: the shipped contract suite on one task or strategy, one line per check."""

from __future__ import annotations

import argparse
from typing import Any

from collapselab.operations.execution.sweep import split_list
from collapselab.operations.plugins import contract_suite


def cmd_check(args: argparse.Namespace) -> int:
    partners = split_list(args.partners) if args.partners else None
    kind, cases = contract_suite.cases_for(args.spec, args.kind, partners)
    print(f"checking {kind} {args.spec} at the {contract_suite.PRESET} preset: {len(cases)} checks", flush=True)
    counts = dict.fromkeys(("PASS", "FAIL", "SKIP"), 0)
    for result in contract_suite.run_suite(cases):
        counts[result.status] += 1
        print(f"{result.status}  {result.title}" + (f": {result.detail}" if result.detail else ""), flush=True)
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} not applicable")
    return 1 if counts["FAIL"] else 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="run the contract suite on a task or strategy (PASS/FAIL per check; exit 1 on a failure)",
        description="Runs the contract suite that every shipped task and baseline passes, at the smoke preset, on "
                    "one task or strategy: a name, or path/to/file.py:ClassName. A task is checked on its own and "
                    "with every installed strategy; a strategy with every installed task.",
    )
    p.add_argument("spec", help="task or strategy: a name, NAME[key=value,...] or path/to/file.py:ClassName")
    p.add_argument("--kind", choices=contract_suite.KINDS, default=None,
                   help="check SPEC as this kind (default: found by name; a file is a task when its class derives "
                        "from a *Task class, else a strategy)")
    p.add_argument("--with", dest="partners", default=None, metavar="SPECS",
                   help="comma-separated partners to run with (strategies for a task, tasks for a strategy; default: "
                        "every installed one)")
    p.set_defaults(func=cmd_check)
