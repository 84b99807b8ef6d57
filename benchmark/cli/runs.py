"""``collapselab run`` (one strategy on one task, one or more seeds) and ``collapselab report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.contracts.params import parse_assignment, parse_seeds
from collapselab.engine import sandbox
from collapselab.engine.loop import CHECKPOINT_SECONDS, RecordListener
from collapselab.errors import ParameterError, ResultFileError
from collapselab.formats.records import Manifest, Record


def overrides(assignments: Sequence[str]) -> dict[str, Any]:
    return dict(parse_assignment(a) for a in assignments)


_ROW = "{:>5} {:>4} {:>12} {:>12} {:>8} {:>10} {:>11} {:>8} {:>9} {:>7}"


def row_printer() -> RecordListener:
    """A loop listener printing one aligned table row per finished generation (above any progress bar)."""
    from tqdm.auto import tqdm

    header_done = [False]

    def show(run_dir: Path, manifest: Manifest, record: Record) -> None:
        metrics, composition, seconds = record.metrics, record.composition, record.seconds
        if not header_done[0]:
            header = ("seed", "gen", "loss", "theory", "real", "synthetic", "examples", "fit s", "sample s", "eval s")
            tqdm.write(_ROW.format(*header), file=sys.stdout)
            header_done[0] = True
        tqdm.write(
            _ROW.format(
                manifest.seed,
                record.generation,
                f"{metrics['loss']:.5g}",
                f"{metrics['theory_loss']:.5g}" if "theory_loss" in metrics else "-",
                composition.real,
                sum(composition.synthetic.values()),
                record.compute.examples,
                f"{seconds['fit']:.2f}",
                f"{seconds['sample']:.2f}",
                f"{seconds['evaluate']:.2f}",
            ),
            file=sys.stdout,
        )
        sys.stdout.flush()  # one line per generation also when stdout is a log file

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from collapselab.engine.loop import RunSpec, execute
    from collapselab.scoring.report import build_report

    task = registry.make_task(args.task, args.preset, overrides(args.set))
    strategy = sandbox.describe(args.strategy)
    seeds = parse_seeds(args.seeds)
    generations = task.default_generations if args.generations is None else args.generations
    if generations < 0:
        raise ParameterError("--generations must be >= 0")
    listeners: list[RecordListener] = [row_printer()]
    logger = None
    if args.wandb:
        from collapselab.operations.execution.wandb_logger import WandbLogger

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
    text, files = build_report(runs, Path(args.out) / "reports" if args.report_dir is None else Path(args.report_dir))
    print()
    print(text)
    for file in files:
        print(f"wrote {file}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from collapselab.operations.results.export import runs_of
    from collapselab.scoring.report import build_report

    runs = runs_of([Path(p) for p in args.run_dirs])
    if not runs:
        raise ResultFileError(f"no run directories found under {', '.join(args.run_dirs)}")
    unfinished = [r for r in runs if not r.complete]
    text, files = build_report(runs, Path(args.out))
    print(text)
    for run in unfinished:
        print(f"note: {run.path} is {run.manifest.status} ({len(run.records)} generations recorded)")
    for file in files:
        print(f"wrote {file}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run one strategy on one task for one or more seeds")
    p.add_argument("--task", required=True,
                   help="task name (collapselab list tasks), or path/to/file.py:ClassName (your own task file, run "
                        "in this process: see the README's 'Write a task')")
    p.add_argument(
        "--strategy",
        required=True,
        help="strategy name, NAME[key=value,...], or path/to/file.py:ClassName",
    )
    p.add_argument("--preset", default="cpu", help="smoke | cpu (default, the leaderboard's) | paper")
    p.add_argument("--generations", type=int, default=None, help="synthetic generations after generation 0")
    p.add_argument("--seeds", default="0", help="e.g. 0-4 or 0,1,2 (default 0)")
    p.add_argument("--out", default="runs", help="root folder of run directories (default runs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a task config key (the keys: collapselab show task NAME)")
    p.add_argument("--report-dir", default=None, help="where the report's files go (default: reports/ inside --out)")
    p.add_argument("--wandb", action="store_true", help="also log every generation to Weights & Biases")
    p.add_argument("--wandb-project", default="collapselab")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (the default when stderr is not a terminal)")
    p.add_argument("--hook-timeout", type=float, default=None, metavar="SECONDS",
                   help="fail a strategy hook that runs longer than this (default: no limit)")
    p.add_argument("--checkpoint-seconds", type=float, default=CHECKPOINT_SECONDS, metavar="SECONDS",
                   help=f"longest time between durable checkpoints of a run (default {CHECKPOINT_SECONDS:g})")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="tables and plots over run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR_OR_SUBMISSION",
                   help="run directories, folders of them, submission files or folders of them (local runs beside "
                        "published entries)")
    p.add_argument("--out", default="reports",
                   help="where the PNG plots and the report JSON go (default reports/); files are named by their "
                        "content, so a report never replaces another")
    p.set_defaults(func=cmd_report)
