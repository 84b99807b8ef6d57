"""What ``collapselab submit`` refuses before writing an entry meant for the leaderboard.

Registered in the core's entry-point group ``collapselab.submission_rules``: the same rules as
``leaderboard validate`` (:func:`collapselab.leaderboard.rules.problems`: preset, seeds, task
versions, clean checkout, a real link), plus the two a file on disk needs: it is named after the
entry (``<name>.json``), and the name is no published entry's unless the file *is* that entry
(regenerating a shipped entry in place), so a new entry never silently replaces ``mix``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collapselab.leaderboard import SUBMISSIONS, rules, submissions_folder


def published_names() -> dict[str, Path]:
    """name -> file of the published entries (the checkout's when run from one, and the installed package's)."""
    folders = {SUBMISSIONS.resolve(), submissions_folder()[0].resolve()}
    return {path.stem: path.resolve() for folder in sorted(folders) if folder.is_dir() for path in folder.glob("*.json")}


def problems(entry: Mapping[str, Any], out: Path) -> list[str]:
    """Every reason the leaderboard would refuse ``entry`` written to ``out``, one line each."""
    name = entry["name"]
    found = []
    if Path(out).name != f"{name}.json":
        found.append(f"{out}: the entry {name!r} must be written to a file named {name}.json")
    shadowed = published_names().get(name)
    if shadowed is not None and shadowed != Path(out).resolve():
        found.append(f"{out}: the name {name!r} is the published entry {shadowed}'s; choose another name "
                     "(a published baseline is regenerated with python -m collapselab.leaderboard.baselines)")
    found.extend(rules.problems(entry, str(out)))
    return found
