"""The one validation path of the leaderboard, shared by ``validate`` and ``build``.

A file is accepted when its format holds (:mod:`collapselab.formats.submission`), the
leaderboard's rules hold (:mod:`collapselab.leaderboard.rules`), it is no other entry run again
(:mod:`collapselab.leaderboard.duplicates`) and the leaderboard's numbers can be computed from it
(a dry run of :func:`collapselab.leaderboard.aggregate.aggregate` with the reference entry): so
every file ``validate`` accepts, ``build`` builds, and neither answer depends on file order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collapselab.errors import SubmissionError
from collapselab.formats import gallery
from collapselab.leaderboard import aggregate, code_versions, duplicates, rules


def dry_run_problems(name: str, entry: Mapping[str, Any], others: Mapping[str, Any], source: str) -> list[str]:
    """Whether the leaderboard can aggregate ``entry`` beside the reference entry among ``others``."""
    references = {n: e for n, e in others.items() if n != name and aggregate._is_reference(e)}
    try:
        aggregate.aggregate({**references, name: entry})
    except SubmissionError as exc:
        return [f"{source}: {problem}" for problem in exc.problems]
    except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
        return [f"{source}: the leaderboard cannot compute this entry's numbers: {type(exc).__name__}: {exc}"]
    return []


#: file (as given) -> its problems, one line each (every line also names the file).
Problems = dict[str, list[str]]


def flat(problems: Problems) -> list[str]:
    """Every problem line, file by file."""
    return [line for _, found in sorted(problems.items()) for line in found]


def load_entries(directory: Path, policy: rules.Rules = rules.LEADERBOARD) -> tuple[dict[str, Any], Problems]:
    """Every ``*.json`` in ``directory``, validated: (name -> entry, file -> problems of the invalid ones).

    Each file is judged beside the whole folder, never beside the files read before it: the same
    files give the same answer whatever their names' order."""
    entries: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: Problems = {}
    for path in sorted(Path(directory).glob("*.json")):
        try:
            entry = rules.read_entry(path, policy)
        except SubmissionError as exc:
            problems[str(path)] = list(exc.problems)
            continue
        entries[entry["name"]] = entry
        sources[entry["name"]] = str(path)
    for name, found in sorted(duplicates.problems(entries, sources).items()):
        problems[sources[name]] = list(found)
        del entries[name]
    failed = {name: dry_run_problems(name, entry, entries, sources[name]) for name, entry in sorted(entries.items())}
    for name, found in failed.items():
        if found:
            problems[sources[name]] = found
            del entries[name]
    return entries, problems


def invalid_files(directory: Path, problems: Problems) -> list[dict[str, Any]]:
    """The problems by file, a file inside ``directory`` by its path there (for the site's list of files left out)."""
    def name(path: str) -> str:
        inside = Path(path).is_relative_to(directory)
        return Path(path).relative_to(directory).as_posix() if inside else path

    return [{"file": name(path), "problems": found} for path, found in sorted(problems.items(), key=lambda i: name(i[0]))]


def _beside(path: Path, entry: Mapping[str, Any], given: Mapping[str, tuple[Path, Any]],
            published: Mapping[str, Any], installed: Mapping[str, str]) -> list[str]:
    """The problems of ``entry`` (read from ``path``) beside the published entries and the other
    given files (a given file replaces the published entry of its name)."""
    name = entry["name"]
    context = {**published, **{n: e for n, (_, e) in given.items() if n != name}, name: entry}
    sources = {n: f"{n}.json" for n in context} | {name: str(path)}
    return (duplicates.problems(context, sources, installed).get(name, [])
            + dry_run_problems(name, entry, context, str(path)))


def check_files(paths: Sequence[Path], policy: rules.Rules = rules.LEADERBOARD,
                published: Mapping[str, Any] | None = None) -> tuple[list[str], bool]:
    """One line per valid file (and its gallery, if it has one), every problem of the others, and
    whether all passed. Each file is judged beside ``published`` (the published entries) and the
    other given files, the same way whatever the order of ``paths``."""
    read: dict[Path, Any] = {}
    refused: dict[Path, SubmissionError] = {}
    for path in map(Path, paths):
        try:
            read[path] = rules.read_entry(path, policy)
        except SubmissionError as exc:
            refused[path] = exc
    given: dict[str, tuple[Path, Any]] = {}
    for path in sorted(read, key=str):
        given.setdefault(read[path]["name"], (path, read[path]))
    installed = duplicates.installed_classes()
    lines, ok = [], True
    for path in map(Path, paths):
        try:
            if path in refused:
                raise refused[path]
            entry = read[path]
            found = _beside(path, entry, given, published or {}, installed)
            if found:
                raise SubmissionError(found)
            samples = gallery.read_for(path, entry)
        except SubmissionError as exc:
            ok = False
            lines.append(f"INVALID {path}")
            lines.extend(f"  {problem}" for problem in exc.problems)
            continue
        tasks = ", ".join(f"{task} (seeds {len(s['runs'])})" for task, s in entry["tasks"].items())
        shown = f"gallery of {', '.join(samples['tasks']) or 'no task'}" if samples is not None else "no gallery"
        lines.append(f"ok      {path}: entry {entry['name']!r}, preset {entry['preset']}, {tasks}; {shown}")
        lines.extend(f"  flagged: {flag}" for flag in code_versions.flags(entry))
    return lines, ok
