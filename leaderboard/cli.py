"""The leaderboard's sub-commands: ``leaderboard validate | check-pr | docs | build | serve`` and ``reproduce``.

Registered with the core command line through the entry-point group ``collapselab.commands``,
so that ``collapselab`` offers them without the core importing the leaderboard.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from collapselab.contracts.params import parse_seeds
from collapselab.contracts.task import LEADERBOARD_PRESET
from collapselab.errors import ParameterError
from collapselab.leaderboard import README, submissions_folder


def _entries_folder(args: argparse.Namespace) -> Path:
    """``--submissions``, else the checkout's entries, else the installed package's; says which."""
    folder, which = submissions_folder(args.submissions)
    print(f"entries: {folder} ({which})")
    return folder


def cmd_validate(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import rules, validate

    policy = rules.Rules(preset=args.preset)
    folder = _entries_folder(args)
    published, _ = validate.load_entries(folder, policy) if folder.is_dir() else ({}, [])
    lines, ok = validate.check_files([Path(p) for p in args.files], policy, published)
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_check_pr(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import pr_check, rules

    lines, ok = pr_check.check(args.base, Path(args.repo), Path(args.out) if args.out else None,
                               rules.Rules(preset=args.preset))
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_rank(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import rank, rules

    lines, ok = rank.rank(Path(args.file), _entries_folder(args), rules.Rules(preset=args.preset))
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_docs(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import docs

    return docs.run(args)


def cmd_build(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import rules, site, text

    start = time.perf_counter()
    board = site.build(Path(args.out), _entries_folder(args), rules.Rules(preset=args.preset), args.skip_invalid,
                       date=args.date, readme=args.readme)
    for excluded in board["excluded"]:
        print(f"left out {excluded['file']}: {len(excluded['problems'])} problem(s)")
    print(text.overall(board))
    print(f"\nwrote {Path(args.out) / 'index.html'}: {len(board['entries'])} entries, {len(board['tasks'])} task(s) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from collapselab.leaderboard import serve

    if not args.no_build:
        cmd_build(args)
    serve.serve(Path(args.out), args.port)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from collapselab.cli.main import launcher_settings
    from collapselab.operations.execution import sweep
    from collapselab.operations.publishing import reproduce

    if args.all == bool(args.entry):
        raise ParameterError("give one entry NAME or --all")
    submissions = _entries_folder(args)
    paths = sorted(submissions.glob("*.json")) if args.all else [reproduce.resolve(args.entry, submissions)]
    tasks = sweep.split_list(args.tasks) if args.tasks else None
    seeds = parse_seeds(args.seeds) if args.seeds else None
    launcher = launcher_settings(args)
    verdicts = {}
    for path in paths:
        report, verdicts[path.stem] = reproduce.reproduce(path, tasks, seeds, Path(args.out), launcher, args.strategy,
                                                          progress=not args.no_progress, missing_ok=args.all)
        print(report + "\n")
    if len(paths) > 1:
        print(", ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in verdicts.items()))
    return 0 if all(verdicts.values()) else 1


def add_docs_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``leaderboard docs`` (:mod:`collapselab.leaderboard.docs`)."""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated regions from the entries")
    mode.add_argument("--check", action="store_true", help="exit 1 when a generated region differs from the entries")
    parser.add_argument("--root", default=".", help="the checkout holding README.md and tasks/ (default: here)")
    parser.add_argument("--submissions", default=None, help="the entries (default: <root>/leaderboard/submissions)")
    parser.add_argument("--preset", default=LEADERBOARD_PRESET, help=f"the leaderboard's preset (default {LEADERBOARD_PRESET})")


HERE = "(default: ./leaderboard/submissions inside a CollapseLab checkout, else the installed package's)"


def register(sub: Any) -> None:
    """Add the leaderboard's parsers to the command line's sub-command set ``sub``."""
    from collapselab.cli.main import add_launcher_arguments

    p = sub.add_parser("leaderboard", help="validate submissions, build or serve the static site")
    board = p.add_subparsers(dest="action", required=True)
    q = board.add_parser("validate", help="check submission files against the leaderboard's rules")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.add_argument("--preset", default=LEADERBOARD_PRESET, help=f"the leaderboard's preset (default {LEADERBOARD_PRESET})")
    q.add_argument("--submissions", default=None, help=f"the published entries each file is checked beside {HERE}")
    q.set_defaults(func=cmd_validate)
    q = board.add_parser("rank", help="where an entry would rank in each track against the published board")
    q.add_argument("file", metavar="FILE", help="a submission file (validated like leaderboard validate)")
    q.add_argument("--preset", default=LEADERBOARD_PRESET, help=f"the leaderboard's preset (default {LEADERBOARD_PRESET})")
    q.add_argument("--submissions", default=None, help=f"the published entries {HERE}")
    q.set_defaults(func=cmd_rank)
    q = board.add_parser("check-pr", help="the pull-request check: validate the changed submissions and re-run their "
                                          "linear_regression sections")
    q.add_argument("--base", required=True, metavar="COMMIT", help="the pull request's base commit")
    q.add_argument("--repo", default=".", help="the checkout (default: the current folder)")
    q.add_argument("--preset", default=LEADERBOARD_PRESET, help=f"the leaderboard's preset (default {LEADERBOARD_PRESET})")
    q.add_argument("--out", default=None, help="a new folder for the re-runs (default: a new temporary folder)")
    q.set_defaults(func=cmd_check_pr)
    q = board.add_parser("docs", help="rewrite (--write) or check (--check) the README's and task cards' tables "
                                      "generated from the entries")
    add_docs_arguments(q)
    q.set_defaults(func=cmd_docs)
    for action, func, text in (("build", cmd_build, "write the static site"),
                               ("serve", cmd_serve, "build, then preview the site on localhost")):
        q = board.add_parser(action, help=text)
        q.add_argument("--out", default="site", help="site folder (default site/)")
        q.add_argument("--submissions", default=None, help=f"folder of submission files {HERE}")
        q.add_argument("--preset", default=LEADERBOARD_PRESET, help=f"the leaderboard's preset (default {LEADERBOARD_PRESET})")
        q.add_argument("--skip-invalid", action="store_true",
                       help="build without invalid files (they are listed on the site) instead of refusing")
        q.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                       help="the build date shown on every page (default: the newest run's date in the submissions)")
        q.add_argument("--readme", default=README, metavar="URL",
                       help="where the footer's README and how-to-submit links point: an http(s) address or a path "
                            "relative to the site (default %(default)s)")
        if action == "serve":
            q.add_argument("--port", type=int, default=8000)
            q.add_argument("--no-build", action="store_true", help="serve --out as it is")
        q.set_defaults(func=func)

    p = sub.add_parser("reproduce", help="re-run a published entry and compare with its numbers")
    p.add_argument("entry", metavar="NAME", nargs="?", help="entry name (leaderboard/submissions/NAME.json) or a file")
    p.add_argument("--all", action="store_true", help="reproduce every published entry")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all of the entry's)")
    p.add_argument("--seeds", default=None, help="seeds to run (default: the published ones)")
    add_launcher_arguments(p)
    p.add_argument("--out", default="runs/reproduce", help="where the re-runs go (default runs/reproduce/)")
    p.add_argument("--strategy", default=None, help="where the strategy's code is, e.g. path/to/file.py:ClassName")
    p.add_argument("--submissions", default=None, help=f"folder of submission files {HERE}")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
