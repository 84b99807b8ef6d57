"""The one validation path of the leaderboard, shared by ``validate`` and ``build``.

A file is accepted when its format holds (:mod:`collapselab.operations.submission`), the
leaderboard's rules hold (:mod:`collapselab.leaderboard.rules`) and the leaderboard's numbers
can be computed from it (a dry run of :func:`collapselab.leaderboard.aggregate.aggregate` with
the reference entries): so every file ``validate`` accepts, ``build`` builds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collapselab.errors import SubmissionError
from collapselab.leaderboard import aggregate, rules
from collapselab.operations import gallery


def dry_run_problems(name: str, entry: Mapping[str, Any], others: Mapping[str, Any], source: str) -> list[str]:
    """Whether the leaderboard can aggregate ``entry`` beside ``others`` (the reference entries)."""
    references = {n: e for n, e in others.items() if n != name and aggregate._is_reference(e)}
    try:
        aggregate.aggregate({**references, name: entry})
    except SubmissionError as exc:
        return [f"{source}: {problem}" for problem in exc.problems]
    except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
        return [f"{source}: the leaderboard cannot compute this entry's numbers: {type(exc).__name__}: {exc}"]
    return []


def load_entries(directory: Path, policy: rules.Rules = rules.LEADERBOARD) -> tuple[dict[str, Any], list[str]]:
    """Every ``*.json`` in ``directory``, validated: (name -> entry, problems of the invalid ones)."""
    entries: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            entry = rules.read_entry(path, policy)
        except SubmissionError as exc:
            problems.extend(exc.problems)
            continue
        entries[entry["name"]] = entry
        sources[entry["name"]] = path
    for name in sorted(entries):
        found = dry_run_problems(name, entries[name], entries, str(sources[name]))
        if found:
            problems.extend(found)
            del entries[name]
    return entries, problems


def invalid_files(directory: Path, problems: Sequence[str]) -> list[dict[str, Any]]:
    """The problems grouped by file (for the site's list of files left out)."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        path = problem.split(": ", 1)[0]
        grouped.setdefault(Path(path).name if path.startswith(str(directory)) else path, []).append(problem)
    return [{"file": file, "problems": found} for file, found in sorted(grouped.items())]


def check_files(paths: Sequence[Path], policy: rules.Rules = rules.LEADERBOARD,
                references: Mapping[str, Any] | None = None) -> tuple[list[str], bool]:
    """One line per valid file (and its gallery, if it has one), every problem of the others, and
    whether all passed; ``references``
    (the published entries) are what each file is aggregated beside in the dry run."""
    lines, ok = [], True
    for path in paths:
        try:
            entry = rules.read_entry(Path(path), policy)
            found = dry_run_problems(entry["name"], entry, references or {}, str(path))
            if found:
                raise SubmissionError(found)
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
