"""Task code that changed without moving a number: the code-equivalence ledger.

A section is refused when the task source hash its runs recorded is not the installed task's
(:mod:`collapselab.leaderboard.code_versions`): a task's version promises that its numbers did not
move, and the hash is how that promise is checked. A change that moves no number (a refactor,
typed configuration) would then mean re-running every section of the task, hours for a neural
one. The ledger (``code_equivalence.json`` beside this module) is the checked alternative: each
link says that task code ``from`` and task code ``to`` (same task, same version) computed the same
numbers, with its evidence:

- the same runs (every shipped entry that applies to the task, the leaderboard's preset, the same
  seeds and generation count) made once by each commit, on one machine, from clean checkouts;
- compared record by record: every field of every generation's record (metrics, composition,
  compute, fit options, artifacts and the SHA-256 of every pool file written) equal, bit for bit,
  and every artifact file (sample images and texts) equal byte for byte;
  only the timings and the model files' hashes may differ (a model file written before
  ``toolkit.training.save_state`` wrote through a file object carries its temporary file's random
  name inside the archive, so equal weights gave other bytes; every metric of the model is
  compared instead); the strategy code and the numerics (BLAS kernel, threads, library versions)
  the same on both sides.

``python -m collapselab.leaderboard.equivalence OLD_RUNS NEW_RUNS`` compares and prints the verdict;
``--record`` adds the link. A section's recorded hash is then accepted when links of its task and
version lead from it to the installed hash, for the strategies every link on the way covered: a
strategy no link ran must be re-run. A pull request that changes submissions may not change the
ledger (:mod:`collapselab.leaderboard.pr_check`).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collapselab.engine import environment, rundir
from collapselab.errors import USER_ERRORS, CollapseLabError
from collapselab.formats import records
from collapselab.formats.records import Record
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text

LEDGER = Path(__file__).with_name("code_equivalence.json")
#: Record fields that may differ between the two sides: how long each phase took, and the hashes of
#: model files (see the module's docstring).
IGNORED = ("seconds/", "checksums/models/")
_SHA = r"^[0-9a-f]{64}$"


class Evidence(BaseModel):
    """What was run on both sides and how much was compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str
    generations: int = Field(ge=1)
    seeds: list[int] = Field(min_length=1)
    strategies: list[str] = Field(min_length=1, description="the strategy specs run, one pair of runs per spec and seed")
    runs: int = Field(ge=1, description="pairs of runs compared")
    values: int = Field(ge=1, description="record fields compared, every one equal")
    numerics: str = Field(description="BLAS kernel and threads both sides ran with")


class Link(BaseModel):
    """Task code ``from_source_sha256`` and ``to_source_sha256`` of one task version compute the same numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    version: str
    from_source_sha256: str = Field(pattern=_SHA)
    to_source_sha256: str = Field(pattern=_SHA)
    from_commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    to_commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    evidence: Evidence


class Ledger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    links: list[Link]


@functools.lru_cache(maxsize=4)
def _read(path: Path, stamp: tuple[int, int]) -> Ledger:
    return Ledger.model_validate(strict_json.loads(strict_json.read_text(path), str(path)))


def read(path: Path = LEDGER) -> Ledger:
    """The ledger at ``path`` (no file: no links); a malformed ledger is a :class:`CollapseLabError`."""
    if not path.is_file():
        return Ledger(links=[])
    stat = path.stat()
    try:
        return _read(path, (stat.st_mtime_ns, stat.st_size))
    except ValueError as exc:
        raise CollapseLabError(f"{path}: not a code-equivalence ledger: {exc}") from None


def covered(task: str, version: str, recorded: str, installed: str, ledger: Ledger) -> frozenset[str] | None:
    """The strategy specs for which links of ``task`` ``version`` lead from code ``recorded`` to code
    ``installed``: a spec counts when every link of some path ran it. None when no path leads there."""
    edges = [link for link in ledger.links if (link.task, link.version) == (task, version)]
    reached: list[frozenset[str]] = []

    def walk(node: str, strategies: frozenset[str] | None, seen: frozenset[str]) -> None:
        for link in edges:
            if link.from_source_sha256 != node or link.to_source_sha256 in seen:
                continue
            ran = frozenset(link.evidence.strategies)
            reach = ran if strategies is None else strategies & ran
            if link.to_source_sha256 == installed:
                reached.append(reach)
            else:
                walk(link.to_source_sha256, reach, seen | {link.to_source_sha256})

    walk(recorded, None, frozenset({recorded}))
    return frozenset().union(*reached) if reached else None


# ----------------------------------------------------------------- comparing two sets of runs
def _key(run: rundir.Run) -> tuple[Any, ...]:
    task = run.manifest.task
    return (task.name, task.version, task.preset, strict_json.dumps(task.config),
            run.manifest.strategy.spec, run.seed, run.manifest.generations)


def _one(values: set[Any], what: str, side: str) -> Any:
    if len(values) != 1:
        raise CollapseLabError(f"the {side} runs do not share one {what}: {sorted(map(str, values))}")
    return next(iter(values))


def _side(runs: Sequence[rundir.Run], side: str) -> dict[str, Any]:
    """What one side's runs share: task, version, source hash, commit and numerics (each exactly one)."""
    if not runs:
        raise CollapseLabError(f"no {side} runs found")
    for run in runs:
        env = run.manifest.environment
        if env.get("dirty") is not False or not isinstance(env.get("git_commit"), str):
            raise CollapseLabError(f"{run.path}: not made from a clean git checkout (dirty {env.get('dirty')!r}); "
                                   "a link names the commits that made its evidence")
        if env.get(environment.NUMERICS_CHANGED):
            raise CollapseLabError(f"{run.path}: resumed under other numerics than it started with")
    return {
        "task": _one({r.task for r in runs}, "task", side),
        "version": _one({r.manifest.task.version for r in runs}, "task version", side),
        "source": _one({r.manifest.task.source_sha256 for r in runs}, "task source hash", side),
        "commit": _one({r.manifest.environment["git_commit"] for r in runs}, "commit", side),
        "numerics": _one({tuple(r.manifest.environment.get(k) for k in environment.NUMERICS_FACTS) for r in runs},
                         "set of numerics facts", side),
    }


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            found.update(_flat(value, f"{prefix}{key}/"))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _fields(record: Record) -> dict[str, Any]:
    """A record flattened to ``metrics/loss``-style names, the :data:`IGNORED` fields left out."""
    return {name: value for name, value in _flat(records.as_json(record)).items() if not name.startswith(IGNORED)}


def differences(old: rundir.Run, new: rundir.Run) -> tuple[int, list[str]]:
    """How many record fields the two runs share, and one line per field that differs (bit for bit)."""
    compared, found = 0, []
    if old.manifest.strategy.source_sha256 != new.manifest.strategy.source_sha256:
        found.append("strategy/source_sha256: the strategy's code differs too; a link is about task code alone")
    if len(old.records) != len(new.records):
        found.append(f"records: {len(old.records)} generations old, {len(new.records)} new")
    for theirs, ours in zip(old.records, new.records):
        before, after = _fields(theirs), _fields(ours)
        for name in sorted(set(before) | set(after)):
            compared += 1
            a, b = before.get(name), after.get(name)
            if type(a) is not type(b) or a != b:
                found.append(f"generation {theirs.generation}, {name}: old {a!r}, new {b!r}")
        for artifact in theirs.artifacts:
            compared += 1
            if not _same_file(old.path / artifact, new.path / artifact):
                found.append(f"generation {theirs.generation}, artifact {artifact}: the files differ (or one is missing)")
    return compared, found


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def _failures(key: tuple[Any, ...], before: rundir.Run, after: rundir.Run) -> list[str]:
    """Nothing when both runs failed alike (same status, generation and message: a strategy the task
    cannot serve, e.g. more fresh data than its reserve holds; no evidence either way), else the problem."""
    def how(run: rundir.Run) -> tuple[Any, ...]:
        error = run.manifest.error
        return run.manifest.status, error and error.generation, error and error.message

    if before.complete or after.complete or how(before) != how(after):
        return [f"{key[4]} seed {key[5]}: old {how(before)}, new {how(after)}"]
    return []


def compare(old_runs: Sequence[rundir.Run], new_runs: Sequence[rundir.Run]) -> tuple[Link | None, list[str]]:
    """The link the runs support, or None, and one line per problem (unpaired runs, differing fields)."""
    old, new = _side(old_runs, "old"), _side(new_runs, "new")
    problems = [f"{what} differs: old {old[what]!r}, new {new[what]!r}" for what in ("task", "version", "numerics")
                if old[what] != new[what]]
    if old["source"] == new["source"]:
        problems.append(f"both sides ran the same task code ({old['source']}): nothing to link")
    pairs: dict[tuple[Any, ...], tuple[list[rundir.Run], list[rundir.Run]]] = defaultdict(lambda: ([], []))
    for side, runs in enumerate((old_runs, new_runs)):
        for run in runs:
            pairs[_key(run)][side].append(run)
    values = 0
    for key, sides in sorted(pairs.items(), key=lambda item: str(item[0])):
        if len(sides[0]) != 1 or len(sides[1]) != 1:
            problems.append(f"{key[4]} seed {key[5]}: {len(sides[0])} old and {len(sides[1])} new runs (one each needed)")
            continue
        before, after = sides[0][0], sides[1][0]
        if not (before.complete and after.complete):
            problems += _failures(key, before, after)
            continue
        compared, found = differences(before, after)
        values += compared
        problems += [f"{key[4]} seed {key[5]}, {line}" for line in found]
    if problems or old["source"] is None or new["source"] is None:
        return None, problems or ["a side recorded no task source hash"]
    facts = dict(zip(environment.NUMERICS_FACTS, old["numerics"]))
    complete = [run for run in old_runs if run.complete]
    if not complete:
        return None, ["no run completed: nothing was compared"]
    first = complete[0].manifest
    link = Link(
        task=old["task"], version=old["version"], from_source_sha256=old["source"], to_source_sha256=new["source"],
        from_commit=old["commit"], to_commit=new["commit"],
        evidence=Evidence(preset=first.task.preset, generations=first.generations,
                          seeds=sorted({r.seed for r in complete}),
                          strategies=sorted({r.manifest.strategy.spec for r in complete}),
                          runs=len(complete), values=values,
                          numerics=f"{facts['blas_kernel']}, {facts['omp_num_threads']} thread(s), {facts['cpu']}"),
    )
    return link, []


def record(link: Link, path: Path = LEDGER) -> None:
    """Add ``link`` to the ledger at ``path`` (a link already there is not added twice)."""
    ledger = read(path)
    if link in ledger.links:
        return
    text = Ledger(links=[*ledger.links, link]).model_dump_json(indent=1)
    atomic_write_text(path, text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collapselab.leaderboard.equivalence", description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="folder of the runs the old commit made (one task)")
    parser.add_argument("new", type=Path, help="folder of the same runs made by the new commit")
    parser.add_argument("--record", action="store_true", help="add the link to the ledger when every value agrees")
    parser.add_argument("--ledger", type=Path, default=LEDGER)
    args = parser.parse_args(argv)
    try:
        link, problems = compare(rundir.find_runs([args.old]), rundir.find_runs([args.new]))
        if link is None:
            print(f"NOT EQUIVALENT ({len(problems)} problem(s)):", *problems[:20], sep="\n  ")
            return 1
        print(f"EQUIVALENT: {link.task} {link.version} {link.from_source_sha256[:12]}... -> "
              f"{link.to_source_sha256[:12]}...: {link.evidence.runs} pairs of runs, {link.evidence.values} values "
              f"bit for bit ({', '.join(link.evidence.strategies)}; seeds {link.evidence.seeds}; "
              f"{link.evidence.numerics})")
        if args.record:
            record(link, args.ledger)
            print(f"recorded in {args.ledger}")
        return 0
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
