"""Whether an entry's numbers were made by the code installed here.

A task's version is a promise that its numbers did not move since the entries of that version
were made; every run's manifest records what makes the promise checkable: the content hash of
the task's package (``task/source_sha256``), the hash of the strategy's source file
(``strategy/source_sha256``) and whether its git checkout had uncommitted changes
(``environment/dirty``, :func:`collapselab.engine.sources.tree_dirty`). The rules:

- **A run made from a dirty checkout is refused.** No commit holds the code that made its
  numbers, so nobody can re-run it; commit, then re-run. ``dirty`` unknown (``null`` or absent:
  an installed wheel, no git, runs made before the flag existed) is accepted: that is how every
  submitter who installed CollapseLab from a package runs it.
- **A task section whose version is the installed task's but whose task source hash is not is
  refused**, not flagged. The version is the only thing that decides whether numbers are
  comparable; a flag would keep numbers made by other code ranked beside new ones, which is how
  a hook could change under published entries unnoticed. So any edit of a task's ``.py`` files
  either bumps its version (the entries' sections are then refused as another version, and
  ``python -m collapselab.leaderboard.baselines --drop-stale`` removes them) or comes with the
  entries re-run on the edited code, or with the evidence that it moves no number (next rule);
  validating the committed entries enforces it.
- **...unless the code-equivalence ledger links the two** (:mod:`collapselab.leaderboard.equivalence`):
  links of the section's task and version, each shown by the same runs made by both commits and
  equal bit for bit, lead from the recorded hash to the installed one for the run's strategy.
- **A section without a task source hash is flagged, not refused**: it was made before the hash
  was recorded, so whether its code matches is unknown. :func:`flags` lists it; ``validate``
  prints it and the site shows it beside the entry.
- **Runs of a shipped baseline whose recorded source hash is not the installed baseline file's
  are refused**: the baseline's code changed since they were made (regenerate the shipped entry,
  or re-run a submission that runs a shipped baseline with other parameters). A missing hash is
  flagged like a missing task hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collapselab.contracts import registry
from collapselab.engine import sources
from collapselab.errors import CollapseLabError
from collapselab.leaderboard import equivalence

SHIPPED = "collapselab.baselines."
REGENERATE = "python -m collapselab.leaderboard.baselines"


def _short(sha: str) -> str:
    return f"{sha[:12]}..."


def installed_task_sha256(name: str) -> str | None:
    """The source hash of the installed task ``name``, or None when it is not installed."""
    try:
        return sources.task_source_sha256(registry.task_class(name))
    except CollapseLabError:
        return None


def shipped_baseline(spec: str) -> type | None:
    """The shipped baseline class a run's recorded strategy spec names (not a file), else None."""
    base = spec.split("[", 1)[0]
    if ".py:" in base:
        return None
    try:
        cls = registry.strategy_class(base)
    except CollapseLabError:
        return None
    return cls if cls.__module__.startswith(SHIPPED) else None


def dirty_problems(entry: Mapping[str, Any], source: str) -> list[str]:
    """One line per task section with a run made from a checkout with uncommitted changes."""
    found = []
    for name, section in sorted(entry["tasks"].items()):
        for index, run in enumerate(section["runs"]):
            env = run["manifest"]["environment"]
            if env.get("dirty") is True:
                commit = env.get("git_commit")
                found.append(f"{source}: field tasks/{name}/runs/{index}/manifest/environment/dirty: run from a checkout with "
                             f"uncommitted changes{f' on commit {_short(commit)}' if isinstance(commit, str) else ''}: no "
                             "commit holds the code that made these numbers; commit the changes, then re-run")
                break
    return found


def _linked(name: str, version: str, run: Mapping[str, Any], installed: str) -> bool:
    """Whether the code-equivalence ledger links the run's recorded task code to the installed code for its strategy."""
    reach = equivalence.covered(name, version, run["manifest"]["task"]["source_sha256"], installed, equivalence.read())
    return reach is not None and run["manifest"]["strategy"]["spec"] in reach


def task_code_problem(name: str, section: Mapping[str, Any], field: str) -> str | None:
    """Why the section's recorded task source hash refuses it (another hash than the installed task's, and
    no link of the code-equivalence ledger from it for the run's strategy), or None."""
    installed = installed_task_sha256(name)
    if installed is None:
        return None
    differing = [(i, run["manifest"]["task"]["source_sha256"]) for i, run in enumerate(section["runs"])
                 if run["manifest"]["task"].get("source_sha256") not in (None, installed)
                 and not _linked(name, section["version"], run, installed)]
    if not differing:
        return None
    index, sha = differing[0]
    return (f"{field}/runs/{index}/manifest/task/source_sha256: the installed {name} (version {section['version']}) is "
            f"other code than these runs were made with (recorded {_short(sha)}, installed {_short(installed)}), and "
            "no link of the code-equivalence ledger vouches for it: the task changed without a version bump; re-run "
            "this section on the installed task, bump the task's version if the change moves its numbers, or show "
            "that it moves none (python -m collapselab.leaderboard.equivalence)")


def baseline_code_problem(entry: Mapping[str, Any], name: str, section: Mapping[str, Any], field: str) -> str | None:
    """Why the section's runs of a shipped baseline are refused (their recorded source hash is not the installed file's), or None."""
    for index, run in enumerate(section["runs"]):
        recorded = run["manifest"]["strategy"]
        cls = shipped_baseline(recorded["spec"])
        installed = registry.source_sha256(cls) if cls is not None else None
        sha = recorded.get("source_sha256")
        if installed is not None and sha is not None and sha != installed:
            return (f"{field}/runs/{index}/manifest/strategy/source_sha256: the baseline's code changed since its entry "
                    f"was made (recorded {_short(sha)}, installed {_short(installed)} in {cls.__module__}): regenerate it "
                    f"({REGENERATE} --tasks {name} --strategies {entry['name']}) or re-run it on the installed baseline")
    return None


def installed_problems(entry: Mapping[str, Any], source: str) -> list[str]:
    """The sections whose task code or shipped baseline code is not the installed code (see the module's docstring)."""
    found = []
    for name, section in sorted(entry["tasks"].items()):
        field = f"{source}: field tasks/{name}"
        found += [p for p in (task_code_problem(name, section, field), baseline_code_problem(entry, name, section, field)) if p]
    return found


def flags(entry: Mapping[str, Any]) -> list[str]:
    """What cannot be checked about an entry's code (made before the hashes were recorded), one phrase each."""
    found = []
    for name, section in sorted(entry["tasks"].items()):
        runs = section["runs"]
        if any(run["manifest"]["task"].get("source_sha256") is None for run in runs):
            found.append(f"{name}: made before task code was hashed; whether the installed {name} "
                         f"{section['version']} made these numbers is unknown")
        if any(shipped_baseline(run["manifest"]["strategy"]["spec"]) is not None
               and run["manifest"]["strategy"].get("source_sha256") is None for run in runs):
            found.append(f"{name}: no strategy source hash; whether the installed baseline made these numbers is unknown")
    return found


def linked(entry: Mapping[str, Any]) -> list[str]:
    """One phrase per task section accepted through the code-equivalence ledger (made by other task
    code than the installed one, which the ledger shows computes the same numbers)."""
    found = []
    ledger = equivalence.read()
    for name, section in sorted(entry["tasks"].items()):
        installed = installed_task_sha256(name)
        recorded = sorted({run["manifest"]["task"].get("source_sha256") for run in section["runs"]} - {None, installed})
        if installed is None or not recorded:
            continue
        links = [link for link in ledger.links if (link.task, link.version, link.from_source_sha256) ==
                 (name, section["version"], recorded[0])]
        via = ", ".join(f"{link.from_commit[:12]} and {link.to_commit[:12]}" for link in links)
        found.append(f"{name}: made by task code {_short(recorded[0])}, not the installed {_short(installed)}; the "
                     f"code-equivalence ledger shows they compute the same numbers (the same runs of commits {via}, "
                     "every record field equal bit for bit)")
    return found
