"""One reference, one name: an entry that is another entry run again is refused.

The leaderboard's reference is the entry named ``replace`` that runs replace without
parameters; no other entry may run it (under another entry name, another strategy name that
resolves to the same installed class, or a copy of its code), and ``replace.json`` runs nothing
else. Two entries are the same when they run the same strategy with the same parameters (the
same strategy name, an installed name that resolves to the same class, or the same source file
and class by ``source_sha256``) or when other code gives the same runs: on every task both
report, every seed both report has the same loss curve (within
:data:`~collapselab.scoring.scorer.SAME_RUN_RTOL`), composition and compute in every generation.
(The same code with other parameters may coincide: accumulate with growing compute is
accumulate on the regression task.) Of two such entries one is kept: the reference,
else one named after the installed strategy it runs (``mix.json`` runs ``mix``), else one named
after its strategy, else the first by name; the other is refused. Every answer depends on the
set of entries only, never on the order of the files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from collapselab.contracts import registry
from collapselab.errors import CollapseLabError
from collapselab.formats import submission
from collapselab.leaderboard.aggregate import REFERENCE
from collapselab.scoring import scorer

NO_PARAMS = "{}"


def installed_classes() -> dict[str, str]:
    """name -> ``module.Class`` of every installed strategy that loads (a file is never imported)."""
    found = {}
    for name in registry.strategy_names():
        try:
            cls = registry.strategy_class(name)
        except CollapseLabError:
            continue
        found[name] = f"{cls.__module__}.{cls.__qualname__}"
    return found


def strategy_keys(entry: Mapping[str, Any], installed: Mapping[str, str]) -> set[tuple[str, ...]]:
    """Everything that names the code an entry ran, each with its parameters: the strategy name,
    the installed class (``installed``: :func:`installed_classes`) its name or its runs' specs
    resolve to, and (source sha256, class name)."""
    params = json.dumps(entry["strategy"]["params"], sort_keys=True)
    keys: set[tuple[str, ...]] = {("name", entry["strategy"]["name"], params)}
    bases = {entry["strategy"]["name"]}
    for section in entry["tasks"].values():
        for run in section["runs"]:
            recorded = run["manifest"]["strategy"]
            base = recorded["spec"].split("[", 1)[0]
            bases.add(base)
            class_name = installed[base].rpartition(".")[2] if base in installed else (
                base.rpartition(":")[2] if ".py:" in base else None)
            if recorded.get("source_sha256") and class_name:
                keys.add(("source", recorded["source_sha256"], class_name, params))
    keys.update(("class", installed[base], params) for base in bases if base in installed)
    return keys


def runs_reference(keys: set[tuple[str, ...]], installed: Mapping[str, str]) -> bool:
    """Whether an entry's :func:`strategy_keys` say it runs the reference (replace) without parameters."""
    return ("name", REFERENCE, NO_PARAMS) in keys or (
        REFERENCE in installed and ("class", installed[REFERENCE], NO_PARAMS) in keys)


def same_code(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> bool:
    """Whether two entries' :func:`strategy_keys` name the same code, whatever the parameters."""
    return bool({key[:-1] for key in a} & {key[:-1] for key in b})


def _steps(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(json.dumps(r["composition"], sort_keys=True), json.dumps(r["compute"], sort_keys=True)) for r in run["records"]]


def _same_section(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[int]:
    """The seeds two sections of a task share when every one of them is the same run, else []."""
    runs = {run["seed"]: run for run in theirs["runs"]}
    mine = {run["seed"]: run for run in ours["runs"]}
    shared = sorted(set(runs) & set(mine))
    loss_a, loss_b = submission.curves(ours), submission.curves(theirs)
    same = all(seed in loss_a and seed in loss_b and scorer.curves_agree(loss_a[seed], loss_b[seed])
               and _steps(mine[seed]) == _steps(runs[seed]) for seed in shared)
    return shared if same else []


def same_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """Why entries ``a`` and ``b`` are one set of runs (on every task both report, every seed both
    report is the same run; see the module's docstring), as a phrase; None when they are not (a
    strategy that coincides with another on some task only differs elsewhere)."""
    tasks = sorted(set(a["tasks"]) & set(b["tasks"]))
    seeds = {task: _same_section(a["tasks"][task], b["tasks"][task]) for task in tasks}
    if not tasks or not all(seeds.values()):
        return None
    shown = ", ".join(f"{task} seeds {seeds[task]}" for task in tasks)
    return f"the same runs: {shown} have the same loss curves, composition and compute"


def _rank(name: str, entry: Mapping[str, Any], installed: Mapping[str, str]) -> tuple[int, str]:
    """Smaller is kept: the reference, then an entry named after the installed strategy it runs,
    then one named after its strategy, then the rest; by name within each."""
    own = name == entry["strategy"]["name"]
    return (0 if name == REFERENCE and own else 1 if own and name in installed else 2 if own else 3), name


def problems(entries: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str],
             installed: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """name -> why the leaderboard refuses that entry: it runs the reference under another name,
    it is ``replace`` running something else, or it is an entry that is kept run again
    (``installed``: :func:`installed_classes`, found when not given)."""
    found: dict[str, list[str]] = {}
    installed = installed_classes() if installed is None else installed
    keys = {name: strategy_keys(entry, installed) for name, entry in entries.items()}
    rank = {name: _rank(name, entry, installed) for name, entry in entries.items()}
    for name, entry in sorted(entries.items()):
        source = sources[name]
        reference = runs_reference(keys[name], installed)
        if reference and name != REFERENCE:
            found[name] = [f"{source}: entry {name!r} runs {REFERENCE!r}, the leaderboard's reference; only the entry "
                           f"named {REFERENCE!r} ({REFERENCE}.json) may run it"]
            continue
        if name == REFERENCE and not reference:
            found[name] = [f"{source}: entry {REFERENCE!r} is the leaderboard's reference and must run the strategy "
                           f"{REFERENCE!r} without parameters"]
            continue
        for other in sorted(entries, key=rank.__getitem__):
            if rank[other] >= rank[name]:
                break
            why: str | None = "it runs the same strategy and parameters"
            if not keys[name] & keys[other]:  # the same code with other parameters may coincide; other code may not
                why = None if same_code(keys[name], keys[other]) else same_runs(entry, entries[other])
            if why:
                found[name] = [f"{source}: entry {name!r} is entry {other!r} run again ({why}); one strategy and "
                               f"parameter set, one entry: the leaderboard keeps {other}.json"]
                break
    return found
