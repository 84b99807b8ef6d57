"""``collapselab leaderboard validate``: the one validation path of the leaderboard.

``build`` reads entries through :func:`load_entries`, ``validate`` through :func:`check_files`;
both apply :func:`collapselab.leaderboard.rules.read_entry`, so a file one accepts the other
accepts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collapselab.errors import SubmissionError
from collapselab.leaderboard import rules
from collapselab.operations import gallery


def load_entries(directory: Path, policy: rules.Rules = rules.LEADERBOARD) -> tuple[dict[str, Any], list[str]]:
    """Every ``*.json`` in ``directory``, validated: (name -> entry, problems of the invalid ones)."""
    entries: dict[str, Any] = {}
    problems: list[str] = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            entry = rules.read_entry(path, policy)
        except SubmissionError as exc:
            problems.extend(exc.problems)
            continue
        entries[entry["name"]] = entry
    return entries, problems


def check_files(paths: Sequence[Path], policy: rules.Rules = rules.LEADERBOARD) -> tuple[list[str], bool]:
    """One line per valid file (and its gallery, if it has one), every problem of the others, and whether all passed."""
    lines, ok = [], True
    for path in paths:
        try:
            entry = rules.read_entry(Path(path), policy)
            samples = gallery.read_for(Path(path), entry)
        except SubmissionError as exc:
            ok = False
            lines.append(f"INVALID {path}")
            lines.extend(f"  {problem}" for problem in exc.problems)
            continue
        tasks = ", ".join(f"{task} (seeds {len(s['runs'])})" for task, s in entry["tasks"].items())
        shown = f"gallery of {', '.join(samples['tasks']) or 'no task'}" if samples is not None else "no gallery"
        lines.append(f"ok      {path}: entry {entry['name']!r}, preset {entry['preset']}, {tasks}; {shown}")
    return lines, ok
