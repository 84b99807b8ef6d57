"""``collapselab submit`` (a leaderboard entry from run directories) and ``collapselab export``
(every generation of runs or submissions as CSV or Parquet)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_submit(args: argparse.Namespace) -> int:
    from collapselab.operations.publishing import submit

    notes = submit.write_entry([Path(p) for p in args.run_dirs], Path(args.out), args.name, args.description, args.url,
                               merge_into=args.merge, with_gallery=not args.no_gallery, checked=not args.draft)
    print("\n".join(notes))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from collapselab.operations.results import export

    out = Path(args.out)
    fmt = args.format or (out.suffix.lstrip(".") if out.suffix.lstrip(".") in export.FORMATS else "csv")
    table = export.export([Path(p) for p in args.paths], out, fmt, scores=args.scores, collapse_profile=args.profile)
    if args.scores:
        print(f"wrote {out}: {len(table)} rows (one per task and strategy or entry), {len(table.columns)} columns, {fmt}")
        return 0
    if args.profile:
        print(f"wrote {out}: {len(table)} rows (one per definition of the collapse profile, per entry and per run), "
              f"{fmt}")
        return 0
    runs = table.groupby(["source", "task", "seed"], sort=False).ngroups
    print(f"wrote {out}: {len(table)} rows (one per generation) from {runs} run(s), {len(table.columns)} columns, {fmt}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("submit", help="write a leaderboard submission from finished run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders holding them")
    p.add_argument("--name", help="entry name: lowercase letters, digits, '.', '_', '-'")
    p.add_argument("--description", help="one paragraph: what the strategy does")
    p.add_argument("--url", default=None, help="http(s) link to the paper or code")
    p.add_argument("--out", required=True, help="the submission file, e.g. leaderboard/submissions/NAME.json")
    p.add_argument("--merge", action="store_true", help="add these runs' tasks to the existing entry in --out")
    p.add_argument("--no-gallery", action="store_true",
                   help="do not write the entry's gallery of samples (galleries/NAME.json beside --out)")
    p.add_argument("--draft", action="store_true",
                   help="write the entry without the leaderboard's rules (preset, seeds, versions, link, name): for "
                        "comparing local runs, not for publishing")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("export", help="every generation of runs or submissions as one CSV, Parquet or JSON table")
    p.add_argument("paths", nargs="+", metavar="RUN_DIR_OR_SUBMISSION",
                   help="run directories, folders of runs, submission files or folders of them")
    p.add_argument("--format", choices=["csv", "parquet", "json"], default=None, help="default: from --out's suffix, else csv")
    p.add_argument("--out", required=True, help="the table to write, e.g. results.csv, results.parquet or results.json")
    p.add_argument("--scores", action="store_true",
                   help="one row per task and strategy (or entry) instead: score against replace with its interval, "
                        "L_G/L_0, track, extra compute, synthetic share")
    p.add_argument("--profile", action="store_true",
                   help="write the collapse profile instead: one row per definition, per entry and per run")
    p.set_defaults(func=cmd_export)
