"""Migrate submission files to the current run-file format when only the format changed.

    python -m collapselab.leaderboard.migrate leaderboard/submissions/*.json

Numbers are never recomputed or edited: a migration only rewrites fields whose meaning is
unchanged. Manifest schema 1 -> 2: schema 2 adds optional fields (status ``interrupted``,
record ``checksums``, ``sampling_options``, ``shared``, the environment's CPU and BLAS kernel),
so a schema-1 manifest is a valid schema-2 manifest once its version says so.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from collapselab.formats import records, submission

MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {
    1: lambda manifest: manifest.update(schema_version=2),
}


def migrate_entry(entry: dict[str, Any]) -> int:
    """Bring every run manifest of ``entry`` to the current schema in place; returns how many changed."""
    changed = 0
    for section in entry["tasks"].values():
        for run in section["runs"]:
            manifest = run["manifest"]
            while manifest.get("schema_version") != records.SCHEMA_VERSION:
                step = MIGRATIONS.get(manifest.get("schema_version"))
                if step is None:
                    raise SystemExit(f"no migration from manifest schema {manifest.get('schema_version')!r}")
                step(manifest)
                changed += 1
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collapselab.leaderboard.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.files:
        entry = submission.load(path)
        changed = migrate_entry(entry)
        submission.write(path, entry)
        print(f"{path}: {changed} manifest(s) migrated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
