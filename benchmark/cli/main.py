"""The ``collapselab`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from collapselab.contracts import registry
from collapselab.contracts.errors import CollapseLabError
from collapselab.contracts.params import ParameterError, parse_assignment, parse_seeds
from collapselab.storage.strict_json import ResultFileError
from collapselab.contracts.task import ConfigError

USER_ERRORS = (CollapseLabError, ConfigError, ParameterError, ResultFileError, OSError)


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
            rows.append([name, cls.version, cls.metadata.modality, ", ".join(cls.presets), cls.metadata.citation])
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
            spec = RunSpec(task, strategy, seed, generations, Path(args.out), strategy_spec=args.strategy)
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
    from collapselab.scoring.report import build_report
    from collapselab.engine.rundir import find_runs

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
def cmd_sweep(args: argparse.Namespace) -> int:
    from collapselab.operations import sweep

    tasks, strategies = sweep.names(args.tasks, "task"), sweep.names(args.strategies, "strategy")
    jobs, outcome = sweep.sweep(
        tasks, strategies, parse_seeds(args.seeds), args.preset, args.generations, Path(args.out), args.jobs,
        progress=not args.no_progress,
    )
    print(sweep.summary(jobs, outcome))
    return 130 if outcome.interrupted else (0 if outcome.ok else 1)


# ----------------------------------------------------------------- submit
def cmd_submit(args: argparse.Namespace) -> int:
    from collapselab.operations import submit

    notes = submit.write_entry([Path(p) for p in args.run_dirs], Path(args.out), args.name, args.description, args.url,
                               merge_into=args.merge)
    print("\n".join(notes))
    return 0


# ------------------------------------------------------------ leaderboard
def cmd_leaderboard_validate(args: argparse.Namespace) -> int:
    from collapselab.operations import submission

    lines, ok = submission.check_files([Path(p) for p in args.files])
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_leaderboard_build(args: argparse.Namespace) -> int:
    import time

    from collapselab.leaderboard import site, text

    start = time.perf_counter()
    board = site.build(Path(args.out), Path(args.submissions))
    print(text.overall(board))
    print(f"\nwrote {Path(args.out) / 'index.html'}: {len(board['entries'])} entries, {len(board['tasks'])} task(s) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_leaderboard_serve(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import serve

    if not args.no_build:
        cmd_leaderboard_build(args)
    serve.serve(Path(args.out), args.port)
    return 0


# -------------------------------------------------------------- reproduce
def cmd_reproduce(args: argparse.Namespace) -> int:
    from collapselab.operations import reproduce
    from collapselab.operations import sweep

    if args.all == bool(args.entry):
        raise ParameterError("give one entry NAME or --all")
    submissions = Path(args.submissions)
    paths = sorted(submissions.glob("*.json")) if args.all else [reproduce.resolve(args.entry, submissions)]
    tasks = sweep.split_list(args.tasks) if args.tasks else None
    seeds = parse_seeds(args.seeds) if args.seeds else None
    verdicts = {}
    for path in paths:
        report, verdicts[path.stem] = reproduce.reproduce(path, tasks, seeds, Path(args.out), args.jobs, args.strategy,
                                                          progress=not args.no_progress, missing_ok=args.all)
        print(report + "\n")
    if len(paths) > 1:
        print(", ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in verdicts.items()))
    return 0 if all(verdicts.values()) else 1


# ----------------------------------------------------------------- parser
def _submissions() -> Path:
    from collapselab.leaderboard import SUBMISSIONS

    return SUBMISSIONS


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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="tables and plots over run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders holding them")
    p.add_argument("--out", default="reports", help="where the PNG plots and report.json go (default reports/)")
    p.set_defaults(func=cmd_report)

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

    p = sub.add_parser("submit", help="write a leaderboard submission from finished run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders holding them")
    p.add_argument("--name", help="entry name: lowercase letters, digits, '.', '_', '-'")
    p.add_argument("--description", help="one paragraph: what the strategy does")
    p.add_argument("--url", default=None, help="http(s) link to the paper or code")
    p.add_argument("--out", required=True, help="the submission file, e.g. leaderboard/submissions/NAME.json")
    p.add_argument("--merge", action="store_true", help="add these runs' tasks to the existing entry in --out")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("leaderboard", help="validate submissions, build or serve the static site")
    board = p.add_subparsers(dest="action", required=True)
    q = board.add_parser("validate", help="check submission files against the leaderboard's rules")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.set_defaults(func=cmd_leaderboard_validate)
    for action, func, text in (("build", cmd_leaderboard_build, "write the static site"),
                               ("serve", cmd_leaderboard_serve, "build, then preview the site on localhost")):
        q = board.add_parser(action, help=text)
        q.add_argument("--out", default="site", help="site folder (default site/)")
        q.add_argument("--submissions", default=str(_submissions()), help="folder of submission files")
        if action == "serve":
            q.add_argument("--port", type=int, default=8000)
            q.add_argument("--no-build", action="store_true", help="serve --out as it is")
        q.set_defaults(func=func)

    p = sub.add_parser("reproduce", help="re-run a published entry and compare with its numbers")
    p.add_argument("entry", metavar="NAME", nargs="?", help="entry name (leaderboard/submissions/NAME.json) or a file")
    p.add_argument("--all", action="store_true", help="reproduce every published entry")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all of the entry's)")
    p.add_argument("--seeds", default=None, help="seeds to run (default: the published ones)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    p.add_argument("--out", default="runs/reproduce", help="where the re-runs go (default runs/reproduce/)")
    p.add_argument("--strategy", default=None, help="where the strategy's code is, e.g. path/to/file.py:ClassName")
    p.add_argument("--submissions", default=str(_submissions()), help="folder of submission files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
    return parser


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
