"""From validated submissions to the leaderboard's numbers (the ``leaderboard.json`` of the site).

Every number comes from :mod:`collapselab.scoring.scorer`: per entry and task, over seeds, L_0,
L_G, the collapse ratio L_G/L_0 and the score over the whole curve against the task's replace
entry (paired by seed), the cost (:func:`cost`: optimiser steps, samples drawn, examples and wall
seconds per seed, each relative to replace) and the budget ratio (examples against generation 0's
standard fit), the real data and the synthetic share each generation trains on. A task is *ranked* when
replace's degradation on it passes the scorer's one-sided t-test; an entry's overall score is the
mean of its clipped scores over the ranked tasks.

Tracks (the scorer's: closed-loop, augmentation, fresh-data) come from the records of every
task section, and an entry's track from its sections'; extra compute is a flag on every row and
task, and within a track flagged entries are ranked only against each other. Reference rows are
shown in every track's table and never ranked: replace (the score's denominator, S = 0 by
definition, the zero of every table's scale) and every entry whose records show no synthetic item
trained on (the ceiling, such as ``real-only``: no synthetic data, no collapse), so each table
reads between its two anchors. Within a track, entries that cover every ranked task are
ranked by overall score; entries that cover fewer are listed in the partial-coverage table with
their per-task scores and no overall rank, so an entry is never ranked by the tasks it left out.
Each row lists its ``flags``: what cannot be checked about the code that made it
(:func:`collapselab.leaderboard.code_versions.flags`), and its ``code_links``: sections made by other
task code that the code-equivalence ledger shows computes the same numbers
(:func:`collapselab.leaderboard.code_versions.linked`).

How sure the order is (:mod:`collapselab.leaderboard.standing`): every ranked entry has a
``rank_band`` (the ranks its overall interval allows among its table's ranked entries), every
table its ``best`` entries per task (and those tied with them), every task the augmentation entries
on the upper ``frontier`` of score against synthetic share, the entries on each track's ``cost_frontier``
(score against time, :func:`standing.cost_frontier`) and its ``ceiling`` entries, beside the
gate's verdict (``degradation``: the one-sided t-test with its level, df, t and p). Every entry
lists the tasks it has no section for that it cannot run on (``not_applicable``, task -> reason,
:mod:`collapselab.leaderboard.applicability`); its other missing tasks were not run. Its
``provenance`` (:mod:`collapselab.leaderboard.provenance`): task versions, commits and the newest run's date.
Every task counts its ``runs`` and the wall seconds they recorded (``run_seconds``: what the board cost),
and names the kinds of machine they were recorded on (``machines``: CPU model and BLAS kernel,
:func:`collapselab.engine.environment.machine`), without which those seconds do not compare.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.contracts.task import LEADERBOARD_PRESET
from collapselab.engine import environment
from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.formats import records, submission
from collapselab.formats.records import Record
from collapselab.leaderboard import applicability, code_versions, provenance, standing
from collapselab.scoring import profile, report, scorer
from collapselab.scoring.report import strategy_display

REFERENCE = "replace"
SCHEMA_VERSION = 5
#: replace's score on every task, by the scale's definition (``scoring.scorer``): an entry at or below it beats nothing.
REPLACE_SCORE = 0.0
#: A fit shorter than this many seconds is too short to time against (linear_regression fits in
#: milliseconds): such a run has no time in units of a standard fit (:func:`_time_units`).
MIN_TIMED_FIT_SECONDS = 0.5


def _summary(values: Sequence[float]) -> dict:
    return scorer.summarize(values).as_dict()


def _is_reference(entry: Mapping[str, Any]) -> bool:
    """The reference is the entry named ``replace`` that runs replace without parameters (no other)."""
    return entry["name"] == REFERENCE and entry["strategy"]["name"] == REFERENCE and not entry["strategy"]["params"]


def references(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """task -> the name of the entry that runs replace on it (at most one may)."""
    found: dict[str, list[str]] = {}
    for name, entry in entries.items():
        if _is_reference(entry):
            for task in entry["tasks"]:
                found.setdefault(task, []).append(name)
    twice = {task: names for task, names in found.items() if len(names) > 1}
    if twice:
        raise SubmissionError([f"task {t!r}: entries {n} all run {REFERENCE!r}; keep one reference" for t, n in twice.items()])
    return {task: names[0] for task, names in sorted(found.items())}


def _per_seed(section: Mapping[str, Any], pick: Any) -> dict[int, float]:
    return {int(run["seed"]): float(pick(run["records"])) for run in section["runs"]}


def _total(records: Sequence[Mapping[str, Any]], key: str) -> float:
    return float(sum(r["compute"][key] for r in records[1:]))


def _real_fraction(records: Sequence[Mapping[str, Any]]) -> float:
    pool = records[0]["composition"]["total"]
    return float(np.mean([r["composition"]["real"] for r in records[1:]]) / pool) if pool else 0.0


def _extra_real(records: Sequence[Mapping[str, Any]]) -> float:
    pool = records[0]["composition"]["total"]
    return float(records[-1]["composition"]["fresh_real"] / pool) if pool else 0.0


def _seconds(record: Mapping[str, Any]) -> float:
    return float(sum(record["seconds"].values()))


def _time_units(records: Sequence[Mapping[str, Any]]) -> float | None:
    """Wall seconds per generation over generations 1..G, each in units of one standard fit (generation
    0's optimiser steps) at the speed of that generation's own fit: ``seconds_g * steps_g / (fit_g *
    steps_0)``, averaged. Every phase counts (sampling, curation, the strategy's hooks, evaluation); a
    fit with more steps than the standard costs more; and since each generation is its own clock, the
    unit cancels the machine and a load that changes during the run. ``None`` where a generation fitted
    in less than :data:`MIN_TIMED_FIT_SECONDS` or took no optimiser step (too short to time against)."""
    standard = float(records[0]["compute"]["steps"])
    later = records[1:]
    if standard <= 0 or not later or any(float(r["seconds"].get("fit", 0.0)) < MIN_TIMED_FIT_SECONDS
                                         or r["compute"]["steps"] <= 0 for r in later):
        return None
    return float(np.mean([_seconds(r) * r["compute"]["steps"] / (float(r["seconds"]["fit"]) * standard) for r in later]))


def cost(section: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """What one seed of the entry costs on the task, mean over seeds: optimiser ``steps``, ``samples``
    drawn and ``examples`` processed over generations 1..G, ``wall_seconds`` of the whole run (every
    phase, generation 0 included; machine-dependent) and ``time_units`` (:func:`_time_units`); and
    the ratios of the means to replace's (``*_ratio``; ``None`` without a reference or a timed unit)."""
    runs = [run["records"] for run in section["runs"]]
    found: dict[str, Any] = {key: float(np.mean([_total(records, key) for records in runs])) for key in ("steps", "samples", "examples")}
    found["wall_seconds"] = float(np.mean([sum(_seconds(r) for r in records) for records in runs]))
    units = [_time_units(records) for records in runs]
    timed = [u for u in units if u is not None]
    found["time_units"] = float(np.mean(timed)) if timed and len(timed) == len(units) else None
    theirs = None if reference is None else cost(reference, None)
    for key in ("steps", "samples", "examples", "time_units"):
        base = None if theirs is None else theirs[key]
        found[f"{key}_ratio"] = None if base is None or base <= 0 or found[key] is None else found[key] / base
    return found


def band(curves: Mapping[int, Sequence[float]]) -> dict[str, list[float | None]]:
    """Mean and Student-t interval per generation over seeds (``curves``: seed -> curve)."""
    return report.band(np.array([curve for _, curve in sorted(curves.items())], dtype=np.float64))


def _budget(section: Mapping[str, Any]) -> dict[str, int]:
    """The compute of one standard fit: what generation 0 spent (the loop fits it with the task's defaults)."""
    first = section["runs"][0]["records"][0]["compute"]
    return {"examples": int(first["examples"]), "steps": int(first["steps"])}


def _budget_ratio(records: Sequence[Mapping[str, Any]]) -> float | None:
    """Examples processed over generations 1..G relative to G standard fits (generation 0's)."""
    standard = float(records[0]["compute"]["examples"]) * (len(records) - 1)
    return _total(records, "examples") / standard if standard > 0 else None


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _profile(section: Mapping[str, Any], runs: Sequence[list[Record]]) -> dict[str, Any]:
    """The collapse profile of a task section over its seeds (:mod:`collapselab.scoring.profile`)."""
    first = section["runs"][0]["manifest"]
    by_seed = {int(run["seed"]): records for run, records in zip(section["runs"], runs)}
    return profile.profile(by_seed, first["task"]["name"], first["strategy"]["name"]).as_dict()


def task_row(section: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers of one entry on one task (``reference``: the replace entry's section)."""
    loss = submission.curves(section)
    generations = section["generations"]
    runs = [records.records_of(run) for run in section["runs"]]
    metrics = sorted({k for run in runs for r in run for k in r.metrics} - {"loss", "loss_se"})
    row: dict[str, Any] = {
        "seeds": sorted(loss),
        "generations": generations,
        "track": scorer.track(runs),
        "extra_compute": any(scorer.uses_extra_compute(run) for run in runs),
        "synthetic_share": _mean([scorer.synthetic_share(run) for run in runs]),
        "initial": _summary([c[0] for c in loss.values()]),
        "final": _summary([c[generations] for c in loss.values()]),
        "ratio": _summary([c[generations] / c[0] for c in loss.values()]),
        "area": _summary([scorer.excess_area(c) for c in loss.values()]),
        "score": None,
        "budget_ratio": _mean([_budget_ratio(run["records"]) for run in section["runs"]]),
        "real_fraction": float(np.mean(list(_per_seed(section, _real_fraction).values()))),
        "extra_real_fraction": float(np.mean(list(_per_seed(section, _extra_real).values()))),
        "cost": cost(section, reference),
        "curve": band(loss),
        "ratio_curve": band({s: scorer.collapse_ratios(c) for s, c in loss.items()}),
        "metrics": {},
        "profile": _profile(section, runs),
    }
    for metric in metrics:
        values = submission.curves(section, metric)
        if values:
            row["metrics"][metric] = {"final": _summary([c[generations] for c in values.values()]), "curve": band(values)}
    if reference is not None:
        score = scorer.paired_score(loss, submission.curves(reference))
        row["score"] = None if score is None else score.as_dict()
    return row


_ROWS: contextvars.ContextVar[dict[tuple[int, int], tuple[Any, ...]] | None] = contextvars.ContextVar("rows", default=None)


@contextlib.contextmanager
def reusing_rows() -> Iterator[None]:
    """Within the block, an entry's numbers on a task (:func:`task_row`) are computed once however
    often the same entries are aggregated (the validator's dry run of each entry beside the
    reference, then the board). The entries must not change inside the block."""
    token = _ROWS.set({})
    try:
        yield
    finally:
        _ROWS.reset(token)


def _row(section: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`task_row`, reused inside :func:`reusing_rows` (keyed by the objects, kept alive so their ids stay theirs)."""
    memo = _ROWS.get()
    if memo is None:
        return task_row(section, reference)
    key = (id(section), id(reference))
    if key not in memo:
        memo[key] = (section, reference, task_row(section, reference))
    return memo[key][-1]


def _geometric_mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and v > 0]
    return float(math.exp(np.mean(np.log(present)))) if present else None


def _task_info(name: str, section: Mapping[str, Any], reference: Mapping[str, Any] | None, reference_name: str | None) -> dict:
    try:
        meta = registry.task_class(name).metadata
        described = {"modality": meta.modality, "description": meta.description, "citation": meta.citation,
                     "loss_unit": meta.loss_unit, "secondary_metrics": dict(meta.secondary_metrics)}
    except CollapseLabError:  # validated entries name installed tasks; this keeps the board readable regardless
        described = {"modality": "", "description": "", "citation": "", "loss_unit": "loss", "secondary_metrics": {}}
    drop = None if reference is None else scorer.degradation(submission.curves(reference))
    return {
        "name": name,
        "version": section["version"],
        "generations": section["generations"],
        **described,
        "budget": _budget(section),
        "reference": reference_name,
        "degradation": None if drop is None else drop.as_dict(),
        "ranked": bool(drop is not None and drop.significant),
    }


def _reference_kind(entry: Mapping[str, Any], per_task: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``denominator`` for replace, ``ceiling`` for an entry that trained on no synthetic item, else ``None``."""
    if _is_reference(entry):
        return "denominator"
    if per_task and all(row["synthetic_share"] == 0 for row in per_task.values()):
        return "ceiling"
    return None


def table_name(track: str, extra_compute: bool) -> str:
    """The name of the table of a track and compute flag (an entry's own table)."""
    return f"{track}, extra compute" if extra_compute else track


def _best(members: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """task -> the best entries and those tied with them (:func:`standing.best_on_task`) among the
    table's non-reference ``members`` with a score on the task that beats replace's (0 on the scale)."""
    return {task: standing.best_on_task({r["name"]: r["tasks"][task]["score"] for r in members if not r["reference"]
                                         and task in r["tasks"] and r["tasks"][task]["score"] is not None},
                                        floor=REPLACE_SCORE)
            for task in tasks}


def _tables(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> list[dict[str, Any]]:
    """One table per track and compute flag that has entries: the board's reference rows (the
    denominator, then the ceilings), its ranked entries and partial-coverage entries, by name, and
    per task its best entries."""
    found = []
    references = [r["name"] for kind in ("denominator", "ceiling") for r in rows if r["reference_kind"] == kind]
    for track in scorer.TRACKS:
        for extra in (False, True):
            members = [r for r in rows if r["track"] == track and r["extra_compute"] == extra]
            if not members:
                continue
            description = scorer.TRACK_DESCRIPTIONS[track] + (" " + scorer.EXTRA_COMPUTE_NOTE if extra else "")
            found.append({
                "name": table_name(track, extra), "track": track, "extra_compute": extra, "description": description,
                "references": references,
                "ranked": [r["name"] for r in members if r["rank"] is not None],
                "partial": [r["name"] for r in members if not r["reference"] and r["rank"] is None],
                "best": _best(members, tasks),
            })
    return found


def _frontier(rows: Sequence[Mapping[str, Any]], task: str) -> list[str]:
    """The augmentation entries on the upper frontier of score against synthetic share on ``task``
    (:func:`standing.upper_frontier`), computed among the entries of the same compute flag."""
    found: list[str] = []
    for extra in (False, True):
        points = {r["name"]: (r["tasks"][task]["synthetic_share"], r["tasks"][task]["score"]["mean"]) for r in rows
                  if not r["reference"] and task in r["tasks"] and r["tasks"][task]["track"] == scorer.AUGMENTATION
                  and r["tasks"][task]["extra_compute"] == extra and r["tasks"][task]["score"] is not None
                  and r["tasks"][task]["synthetic_share"] is not None}
        found += standing.upper_frontier(points)
    return sorted(found)


def _cost_frontier(rows: Sequence[Mapping[str, Any]], task: str) -> dict[str, list[str]]:
    """track -> its entries on the cost frontier of ``task`` (:func:`standing.cost_frontier` of score
    against time per generation relative to replace), among its scored non-reference entries."""
    found = {}
    for track in scorer.TRACKS:
        points = {r["name"]: (r["tasks"][task]["cost"]["time_units_ratio"], r["tasks"][task]["score"]["mean"]) for r in rows
                  if not r["reference"] and task in r["tasks"] and r["tasks"][task]["track"] == track
                  and r["tasks"][task]["score"] is not None and r["tasks"][task]["cost"]["time_units_ratio"] is not None}
        if points:
            found[track] = standing.cost_frontier(points)
    return found


def aggregate(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The leaderboard from validated entries (name -> submission), ranked per track."""
    refs = references(entries)
    problems = [
        f"entry {name!r}, task {task!r}: its data ({entry['tasks'][task]['data']}) differ from the "
        f"{REFERENCE} entry's ({entries[refs[task]]['tasks'][task]['data']}); scores need the same data"
        for name, entry in sorted(entries.items())
        for task in entry["tasks"]
        if task in refs and entry["tasks"][task]["data"] != entries[refs[task]]["tasks"][task]["data"]
    ]
    if problems:
        raise SubmissionError(problems)
    task_names = sorted({task for entry in entries.values() for task in entry["tasks"]})
    tasks = []
    for task in task_names:
        reference = entries[refs[task]]["tasks"][task] if task in refs else None
        holder = reference or next(e for _, e in sorted(entries.items()) if task in e["tasks"])["tasks"][task]
        tasks.append(_task_info(task, holder, reference, refs.get(task)))
    ranked_tasks = [t["name"] for t in tasks if t["ranked"]]
    preset = next(iter(entries.values()))["preset"] if entries else LEADERBOARD_PRESET
    rows = []
    for name, entry in sorted(entries.items()):
        per_task = {task: _row(section, entries[refs[task]]["tasks"][task] if task in refs else None)
                    for task, section in sorted(entry["tasks"].items())}
        scores = {task: scorer.Score(**{k: v for k, v in per_task[task]["score"].items()})
                  for task in ranked_tasks if task in per_task and per_task[task]["score"] is not None}
        complete = bool(ranked_tasks) and set(scores) == set(ranked_tasks)
        combined = scorer.overall(scores) if complete else None
        kind = _reference_kind(entry, per_task)
        rows.append({
            "name": name,
            "description": entry["description"],
            "url": entry["url"],
            "strategy": strategy_display(entry["strategy"]["name"], entry["strategy"]["params"]),
            "citation": entry["strategy"]["citation"],
            "provenance": provenance.provenance(entry),
            "track": scorer.combine_tracks(row["track"] for row in per_task.values()),
            "extra_compute": any(row["extra_compute"] for row in per_task.values()),
            "synthetic_share": _mean([row["synthetic_share"] for row in per_task.values()]),
            "reference": kind is not None,
            "reference_kind": kind,
            "overall": None if combined is None else combined.as_dict(),
            "coverage": len(scores),
            "complete": complete,
            "compute_ratio": _geometric_mean([row["cost"]["examples_ratio"] for row in per_task.values()]),
            "time_ratio": _geometric_mean([row["cost"]["time_units_ratio"] for row in per_task.values()]),
            "budget_ratio": _geometric_mean([row["budget_ratio"] for row in per_task.values()]),
            "real_fraction": float(np.mean([row["real_fraction"] for row in per_task.values()])),
            "extra_real_fraction": float(np.mean([row["extra_real_fraction"] for row in per_task.values()])),
            "tasks": per_task,
            "flags": code_versions.flags(entry),
            "code_links": code_versions.linked(entry),
            "not_applicable": applicability.not_applicable(entry["strategy"], [t for t in task_names if t not in per_task],
                                                           preset),
            "rank": None,
            "rank_band": None,
        })
    for track in scorer.TRACKS:
        for extra in (False, True):
            ranked = [r for r in rows if r["track"] == track and r["extra_compute"] == extra
                      and r["overall"] is not None and not r["reference"]]
            ranked.sort(key=lambda r: (-r["overall"]["mean"], r["name"]))
            for rank, row in enumerate(ranked, start=1):
                row["rank"] = rank
            bands = standing.rank_bands({r["name"]: r["overall"] for r in ranked})
            for row in ranked:
                row["rank_band"] = list(bands[row["name"]])
    for task in tasks:
        task["frontier"] = _frontier(rows, task["name"])
        task["cost_frontier"] = _cost_frontier(rows, task["name"])
        task["ceiling"] = [r["name"] for r in rows if r["reference_kind"] == "ceiling" and task["name"] in r["tasks"]]
        runs = [run for entry in entries.values() if task["name"] in entry["tasks"] for run in entry["tasks"][task["name"]]["runs"]]
        task["runs"], task["run_seconds"] = len(runs), sum(sum(_seconds(r) for r in run["records"]) for run in runs)
        task["machines"] = sorted({environment.machine(run["manifest"].get("environment", {})) for run in runs})
    order = list(scorer.TRACKS)
    rows.sort(key=lambda r: (order.index(r["track"]), r["extra_compute"], not r["reference"], r["rank"] is None,
                             r["rank"] or 0, r["name"]))
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": preset,
        "reference": REFERENCE,
        "tasks": tasks,
        "ranked_tasks": ranked_tasks,
        "tracks": _tables(rows, task_names),
        "entries": rows,
    }
