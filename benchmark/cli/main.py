"""The ``collapselab`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from collapselab.contracts import registry
from collapselab.engine.loop import CHECKPOINT_SECONDS
from collapselab.contracts.params import parse_assignment, parse_seeds
from collapselab.errors import USER_ERRORS, CollapseLabError, ParameterError, ResultFileError


# ------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

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
        headers = ["task", "version", "modality", "presets", "source"]
        print(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    if what == "all":
        print()
    if what in ("strategies", "all"):
        rows = []
        for name in registry.strategy_names():
            try:
                cls = registry.strategy_class(name)
            except CollapseLabError as exc:
                rows.append([name, "-", "(unavailable)", str(exc)])
                continue
            params = ", ".join(f"{k}={v}" for k, v in cls.parameters.items()) or "-"
            track = "extra real data" if cls.uses_extra_real_data else "standard"
            rows.append([name, params, track, cls.citation])
        headers = ["strategy", "parameters (defaults)", "track", "source"]
        print(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    return 0


# -------------------------------------------------------------------- run
def _overrides(assignments: Sequence[str]) -> dict[str, Any]:
    return dict(parse_assignment(a) for a in assignments)


_ROW = "{:>5} {:>4} {:>12} {:>12} {:>8} {:>10} {:>11} {:>8} {:>9} {:>7}"


def _row_printer() -> Callable[[Path, Mapping[str, Any], Mapping[str, Any]], None]:
    """A loop listener printing one aligned table row per finished generation."""
    header_done = [False]

    def show(run_dir: Path, manifest: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        metrics, composition, seconds = record["metrics"], record["composition"], record["seconds"]
        if not header_done[0]:
            header = ("seed", "gen", "loss", "theory", "real", "synthetic", "examples", "fit s", "sample s", "eval s")
            tqdm.write(_ROW.format(*header))
            header_done[0] = True
        tqdm.write(
            _ROW.format(
                manifest["seed"],
                record["generation"],
                f"{metrics['loss']:.5g}",
                f"{metrics['theory_loss']:.5g}" if "theory_loss" in metrics else "-",
                composition["real"],
                sum(composition["synthetic"].values()),
                record["compute"]["examples"],
                f"{seconds['fit']:.2f}",
                f"{seconds['sample']:.2f}",
                f"{seconds['evaluate']:.2f}",
            )
        )

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from collapselab.engine.loop import RunSpec, execute
    from collapselab.scoring.report import build_report

    task = registry.make_task(args.task, args.preset, _overrides(args.set))
    strategy = registry.make_strategy(args.strategy)
    seeds = parse_seeds(args.seeds)
    generations = task.default_generations if args.generations is None else args.generations
    if generations < 0:
        raise ParameterError("--generations must be >= 0")
    listeners: list[Any] = [_row_printer()]
    logger = None
    if args.wandb:
        from collapselab.operations.wandb_logger import WandbLogger

        logger = WandbLogger(project=args.wandb_project)
        listeners.append(logger)
    runs = []
    try:
        for seed in seeds:
            spec = RunSpec(task, strategy, seed, generations, Path(args.out), strategy_spec=args.strategy,
                           hook_timeout=args.hook_timeout, checkpoint_seconds=args.checkpoint_seconds)
            runs.append(execute(spec, listeners, progress=not args.no_progress))
            print(f"seed {seed}: {runs[-1].path}", file=sys.stderr)
    finally:
        if logger is not None:
            logger.close()
    text, files = build_report(runs, Path(args.report_dir))
    print()
    print(text)
    for file in files:
        print(f"wrote {file}")
    return 0


# ----------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from collapselab.engine.rundir import find_runs
    from collapselab.scoring.report import build_report

    runs = find_runs([Path(p) for p in args.run_dirs])
    if not runs:
        raise ResultFileError(f"no run directories found under {', '.join(args.run_dirs)}")
    unfinished = [r for r in runs if not r.complete]
    text, files = build_report(runs, Path(args.out))
    print(text)
    for run in unfinished:
        print(f"note: {run.path} is {run.manifest['status']} ({len(run.records)} generations recorded)")
    for file in files:
        print(f"wrote {file}")
    return 0


# ------------------------------------------------------------------ sweep
LAUNCHER_HELP = (
    "where the runs go: local (processes of this machine, default), submitit-local (the same jobs through "
    "submitit's local executor) or slurm (one Slurm job array through submitit)"
)


def add_launcher_arguments(p: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--launcher``, ``--launcher-config`` and ``--gpus-per-job`` (sweep and reproduce)."""
    from collapselab.operations.launchers import LAUNCHERS

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
    from collapselab.operations.launcher_config import load_config
    from collapselab.operations.launchers import LauncherSettings

    config = load_config(Path(args.launcher_config) if args.launcher_config else None)
    return LauncherSettings(args.launcher, config, args.jobs, args.gpus_per_job)


def cmd_sweep(args: argparse.Namespace) -> int:
    from collapselab.operations import sweep

    if args.generations is not None and args.generations < 0:
        raise ParameterError("--generations must be >= 0")
    tasks, strategies = sweep.names(args.tasks, "task"), sweep.names(args.strategies, "strategy")
    wandb_project = args.wandb_project if args.wandb else None
    launcher = launcher_settings(args).build(Path(args.out))  # before planning, which may build task data
    jobs, not_applicable = sweep.plan(tasks, strategies, parse_seeds(args.seeds), args.preset, args.generations,
                                      Path(args.out), args.set, wandb_project)
    print(sweep.describe(jobs, not_applicable, launcher), flush=True)
    outcome = sweep.run_jobs(jobs, launcher, progress=not args.no_progress)
    outcome.not_applicable = not_applicable
    print(sweep.summary(jobs, outcome))
    return 130 if outcome.interrupted else (0 if outcome.ok else 1)


# ----------------------------------------------------------------- submit
def cmd_submit(args: argparse.Namespace) -> int:
    from collapselab.operations import submit

    notes = submit.write_entry([Path(p) for p in args.run_dirs], Path(args.out), args.name, args.description, args.url,
                               merge_into=args.merge)
    print("\n".join(notes))
    return 0


# ----------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collapselab",
        description="CollapseLab: measure model collapse under recursive training, across modalities.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list tasks and strategies")
    p.add_argument("what", nargs="?", choices=["tasks", "strategies", "all"], default="all")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one strategy on one task for one or more seeds")
    p.add_argument("--task", required=True, help="task name (collapselab list tasks)")
    p.add_argument(
        "--strategy",
        required=True,
        help="strategy name, NAME[key=value,...], or path/to/file.py:ClassName",
    )
    p.add_argument("--preset", default="cpu", help="smoke | cpu (default, the leaderboard's) | paper")
    p.add_argument("--generations", type=int, default=None, help="synthetic generations after generation 0")
    p.add_argument("--seeds", default="0", help="e.g. 0-4 or 0,1,2 (default 0)")
    p.add_argument("--out", default="runs", help="root folder of run directories (default runs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a task config key")
    p.add_argument("--report-dir", default="reports", help="where the summary plot goes (default reports/)")
    p.add_argument("--wandb", action="store_true", help="also log every generation to Weights & Biases")
    p.add_argument("--wandb-project", default="collapselab")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--hook-timeout", type=float, default=None, metavar="SECONDS",
                   help="fail a strategy hook that runs longer than this (default: no limit)")
    p.add_argument("--checkpoint-seconds", type=float, default=CHECKPOINT_SECONDS, metavar="SECONDS",
                   help=f"longest time between durable checkpoints of a run (default {CHECKPOINT_SECONDS:g})")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="tables and plots over run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders holding them")
    p.add_argument("--out", default="reports", help="where the PNG plots and report.json go (default reports/)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "sweep",
        help="run a grid of tasks x strategies x seeds (parallel, resumable; locally, through submitit or on Slurm)",
        description="Run a grid of tasks x strategies x seeds, one job per run directory: complete runs are skipped, "
                    "unfinished ones resume, so re-running the same command finishes what failed or was interrupted. "
                    "A strategy spec may hold a parameter grid: inside the brackets an item without '=' is one more "
                    "value of the parameter before it, and several parameters give every combination, e.g. "
                    "'mix[real_fraction=0.1,0.3,0.5]' is three strategies and 'verifier-filter[keep_fraction=0.25,0.5,"
                    "accumulate=true,false]' four. The expanded grid is printed before anything runs.",
    )
    p.add_argument("--tasks", required=True, help="comma-separated task names, or all")
    p.add_argument("--strategies", required=True,
                   help="comma-separated strategy specs (NAME[key=value,...], parameter grids NAME[key=v1,v2,...]), or all")
    p.add_argument("--seeds", default="0-2", help="e.g. 0-2 (default) or 0,1,5")
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

    p = sub.add_parser("submit", help="write a leaderboard submission from finished run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders holding them")
    p.add_argument("--name", help="entry name: lowercase letters, digits, '.', '_', '-'")
    p.add_argument("--description", help="one paragraph: what the strategy does")
    p.add_argument("--url", default=None, help="http(s) link to the paper or code")
    p.add_argument("--out", required=True, help="the submission file, e.g. leaderboard/submissions/NAME.json")
    p.add_argument("--merge", action="store_true", help="add these runs' tasks to the existing entry in --out")
    p.set_defaults(func=cmd_submit)

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
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
