"""The ``collapselab`` command line: the parser, error reporting and the ``sweep`` command.

The other commands live in one module per group (:mod:`.catalog`: list, show; :mod:`.runs`:
run, report; :mod:`.results`: submit, export); installed packages add more through the
entry-point group ``collapselab.commands`` (the leaderboard's commands arrive that way).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collapselab.cli import catalog, results, runs
from collapselab.contracts.params import parse_seeds
from collapselab.errors import USER_ERRORS


# ------------------------------------------------------------------ sweep
def cmd_sweep(args: argparse.Namespace) -> int:
    from collapselab.operations import sweep

    tasks, strategies = sweep.names(args.tasks, "task"), sweep.names(args.strategies, "strategy")
    jobs, outcome = sweep.sweep(
        tasks, strategies, parse_seeds(args.seeds), args.preset, args.generations, Path(args.out), args.jobs,
        progress=not args.no_progress,
    )
    print(sweep.summary(jobs, outcome))
    return 130 if outcome.interrupted else (0 if outcome.ok else 1)


# ----------------------------------------------------------------- parser
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("collapselab")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collapselab",
        description="CollapseLab: measure model collapse under recursive training, across modalities.",
    )
    parser.add_argument("--version", action="version", version=f"collapselab {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    catalog.register(sub)
    runs.register(sub)

    p = sub.add_parser("sweep", help="run a grid of tasks x strategies x seeds (parallel, resumable)")
    p.add_argument("--tasks", required=True, help="comma-separated task names, or all")
    p.add_argument("--strategies", required=True, help="comma-separated strategy specs (NAME[key=value,...]), or all")
    p.add_argument("--seeds", default="0-2", help="e.g. 0-2 (default) or 0,1,5")
    p.add_argument("--preset", default="cpu", help="smoke | cpu (default, the leaderboard's) | paper")
    p.add_argument("--generations", type=int, default=None, help="default: the preset's")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, each with a fair share of the cores")
    p.add_argument("--out", default="runs", help="root folder of run directories (default runs/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    results.register(sub)
    for group in command_groups():
        group(sub)
    return parser


COMMAND_GROUP = "collapselab.commands"


def command_groups() -> list[Any]:
    """Extra sub-commands registered by installed packages (entry-point group ``collapselab.commands``):
    each entry point is a function that adds its parsers to the sub-command set. The leaderboard's
    ``leaderboard validate | build | serve`` and ``reproduce`` arrive this way, so the core never imports the leaderboard."""
    from importlib.metadata import entry_points

    return [ep.load() for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda ep: ep.name)]


def _progress_only_on_terminals(args: argparse.Namespace) -> None:
    """Progress bars redraw one line with carriage returns: on a terminal that is a bar, in a log
    file (Slurm, CI) a pile of frames. Off a terminal the commands print their per-generation or
    per-run lines only."""
    if hasattr(args, "no_progress") and not sys.stderr.isatty():
        args.no_progress = True


def _quiet_closed_pipe() -> int:
    """``collapselab list | head``: the reader has gone; say nothing and leave like a program killed by SIGPIPE."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured output)
        return 128 + 13
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout)  # the interpreter's final flush must not fail again
    os.close(devnull)
    return 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _progress_only_on_terminals(args)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _quiet_closed_pipe()
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"collapselab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("collapselab: interrupted; finished generations are kept and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
