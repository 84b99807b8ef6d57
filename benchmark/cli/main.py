"""The ``collapselab`` command line: the parser, error reporting and the ``sweep`` command.

The other commands live in one module per group (:mod:`.catalog`: list, show; :mod:`.runs`:
run, report; :mod:`.check`: check; :mod:`.results`: submit, export); installed packages add more through the
entry-point group ``collapselab.commands`` (the leaderboard's commands arrive that way).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collapselab.cli import catalog, check, results, runs
from collapselab.contracts.params import parse_seeds
from collapselab.errors import USER_ERRORS, ParameterError

# ------------------------------------------------------------------ sweep
LAUNCHER_HELP = (
    "where the runs go: local (processes of this machine, default), submitit-local (the same jobs through "
    "submitit's local executor) or slurm (one Slurm job array through submitit)"
)


def add_launcher_arguments(p: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--launcher``, ``--launcher-config`` and ``--gpus-per-job`` (sweep and reproduce)."""
    from collapselab.operations.execution.launchers import LAUNCHERS

    p.add_argument("--jobs", type=int, default=None,
                   help="runs at once, each with a fair share of the cores (default 1, or one per GPU group with "
                        "--gpus-per-job; slurm: the array's parallelism)")
    p.add_argument("--launcher", choices=list(LAUNCHERS), default="local", help=LAUNCHER_HELP)
    p.add_argument("--launcher-config", metavar="FILE", default=None,
                   help="YAML or JSON: partition, time (minutes), gpus_per_job, cpus_per_job, mem_gb, array_parallelism, "
                        "account, qos, setup, slurm_parameters... (example: leaderboard/launchers/slurm.example.yaml)")
    p.add_argument("--gpus-per-job", type=int, default=None, metavar="N",
                   help="GPUs per run: local launchers give each running job its own CUDA_VISIBLE_DEVICES group "
                        "(GPUs found through CUDA_VISIBLE_DEVICES or nvidia-smi); slurm asks for N GPUs per job")


def launcher_settings(args: argparse.Namespace) -> Any:
    """The :class:`LauncherSettings` of the flags :func:`add_launcher_arguments` added."""
    from collapselab.operations.execution.launcher_config import load_config
    from collapselab.operations.execution.launchers import LauncherSettings

    config = load_config(Path(args.launcher_config) if args.launcher_config else None)
    return LauncherSettings(args.launcher, config, args.jobs, args.gpus_per_job)


#: ``--seeds`` value for each task's leaderboard seeds (:attr:`Task.leaderboard_seeds`).
LEADERBOARD_SEEDS = "leaderboard"


def cmd_sweep(args: argparse.Namespace) -> int:
    from collapselab.operations.execution import sweep

    if args.generations is not None and args.generations < 0:
        raise ParameterError("--generations must be >= 0")
    tasks, strategies = sweep.names(args.tasks, "task"), sweep.names(args.strategies, "strategy")
    wandb_project = args.wandb_project if args.wandb else None
    launcher = launcher_settings(args).build(Path(args.out))  # before planning, which may build task data
    seeds = None if args.seeds == LEADERBOARD_SEEDS else parse_seeds(args.seeds)
    jobs, not_applicable = sweep.plan(tasks, strategies, seeds, args.preset, args.generations,
                                      Path(args.out), args.set, wandb_project)
    print(sweep.describe(jobs, not_applicable, launcher), flush=True)
    outcome = sweep.run_jobs(jobs, launcher, progress=not args.no_progress)
    outcome.not_applicable = not_applicable
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
    check.register(sub)

    p = sub.add_parser(
        "sweep",
        help="run a grid of tasks x strategies x seeds (parallel, resumable; locally, through submitit or on Slurm)",
        description="Run a grid of tasks x strategies x seeds, one job per run directory: complete runs are skipped, "
                    "unfinished ones resume, so re-running the same command finishes what failed or was interrupted. "
                    "A strategy spec may hold a parameter grid: inside the brackets an item without '=' is one more "
                    "value of the parameter before it, and several parameters give every combination, e.g. "
                    "'mix[real_fraction=0.1,0.3,0.5]' is three strategies and 'verifier-filter[quality=0.5,1,"
                    "accumulate=true,false]' four. The expanded grid is printed before anything runs.",
    )
    p.add_argument("--tasks", "--task", required=True,
                   help="comma-separated task names or path/to/file.py:ClassName (your own task file, run in this "
                        "process and the sweep's workers), or all")
    p.add_argument("--strategies", required=True,
                   help="comma-separated strategy specs (NAME[key=value,...], parameter grids NAME[key=v1,v2,...]), or all")
    p.add_argument("--seeds", default="0-2",
                   help=f"e.g. 0-2 (default) or 0,1,5; {LEADERBOARD_SEEDS!r}: each task's leaderboard seeds, the seeds "
                        "every entry reports (0-2 on most tasks, more where runs are cheap)")
    p.add_argument("--preset", default="cpu", help="smoke | cpu (default, the leaderboard's) | paper")
    p.add_argument("--generations", type=int, default=None, help="default: the preset's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a task config key (in every task of the sweep that has it)")
    p.add_argument("--out", default="runs", help="root folder of run directories (default runs/)")
    add_launcher_arguments(p)
    p.add_argument("--wandb", action="store_true", help="also log every generation to Weights & Biases")
    p.add_argument("--wandb-project", default="collapselab")
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
