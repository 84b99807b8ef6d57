"""``collapselab submit``: turn finished run directories into one submission entry.

The runs must form one entry: one strategy with one parameter set, one preset, and per task
one task version, configuration, data and strategy source. Unfinished runs are refused. With
``merge``, the tasks of the new runs are added to an existing entry (replacing the sections of
the tasks they cover), which is how a task that lands later joins the published entries.

Publishing rules are not the core's: an installed package registers them in the entry-point
group ``collapselab.submission_rules`` (the leaderboard registers its rules there: preset, seeds,
versions, the file named after the entry, a real link, no name of a published entry), and with
``checked`` an entry any of them refuses is not written. ``collapselab submit --draft`` writes
without them, for comparing local runs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from collapselab.engine.rundir import Run, find_runs
from collapselab.errors import SubmissionError
from collapselab.formats import gallery, records, submission
from collapselab.operations.publishing import artifacts
from collapselab.scoring.report import strategy_display

RULES_GROUP = "collapselab.submission_rules"
RECORD_FIELDS = {"generation", "metrics", "composition", "compute", "seconds", "fit_options"}  # what an entry keeps of a record


def _one(values: Mapping[str, Any], what: str) -> Any:
    """The single value shared by every run, or a refusal listing where the runs differ."""
    distinct = {json.dumps(v, sort_keys=True): v for v in values.values()}
    if len(distinct) > 1:
        listing = "\n  ".join(f"{path}: {value!r}" for path, value in sorted(values.items()))
        raise SubmissionError([f"these runs mix {what}; an entry needs one:\n  {listing}"])
    return next(iter(distinct.values()))


def _section(task: str, runs: Sequence[Run]) -> dict[str, Any]:
    by_path = {str(run.path): run for run in runs}
    first = runs[0].identity
    for run in runs[1:]:  # every seed must be the same experiment (RunIdentity without the seed)
        for what, ours, theirs in first.differences(run.identity):
            if what != "seed":
                raise SubmissionError([f"these runs mix {what} on task {task!r}; an entry needs one:\n"
                                       f"  {runs[0].path}: {ours!r}\n  {run.path}: {theirs!r}"])
    version, config, data = first.task.version, dict(first.task.config), dict(first.task.data)
    generations = _one({p: r.manifest.generations for p, r in by_path.items()}, f"generation counts on task {task!r}")
    seeds: dict[int, str] = {}
    for run in runs:
        if run.seed in seeds:
            raise SubmissionError([f"task {task!r}: seed {run.seed} appears twice ({seeds[run.seed]} and {run.path})"])
        seeds[run.seed] = str(run.path)
    return {
        "version": version,
        "config": config,
        "data": data,
        "generations": generations,
        "runs": [
            {
                "seed": run.seed,
                "manifest": records.as_json(run.manifest),
                "records": [r.model_dump(mode="json", include=RECORD_FIELDS) for r in run.records],
            }
            for run in sorted(runs, key=lambda r: r.seed)
        ],
    }


def build(runs: Sequence[Run], name: str, description: str, url: str | None) -> dict[str, Any]:
    """The submission for ``runs``; refuses unfinished runs and runs that mix set-ups."""
    if not runs:
        raise SubmissionError(["no run directories given"])
    unfinished = [
        f"{run.path}: status {run.manifest.status!r}, {len(run.records)} of {run.manifest.generations + 1} "
        "generations recorded (finish it with `collapselab sweep` or `run`, which resume)"
        for run in runs
        if not run.complete or len(run.records) != run.manifest.generations + 1
    ]
    if unfinished:
        raise SubmissionError(unfinished)
    by_path = {str(run.path): run for run in runs}
    strategies = {p: strategy_display(r.manifest.strategy.name, r.manifest.strategy.params) for p, r in by_path.items()}
    _one(strategies, "strategies or strategy parameters")
    preset = _one({p: r.manifest.task.preset for p, r in by_path.items()}, "presets")
    first = runs[0].manifest.strategy
    by_task: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
    return {
        "schema_version": submission.SCHEMA_VERSION,
        "name": name,
        "description": description,
        "url": url,
        "strategy": {
            "name": first.name,
            "params": first.params,
            "citation": first.citation,
            "uses_extra_real_data": first.uses_extra_real_data,
        },
        "preset": preset,
        "tasks": {task: _section(task, members) for task, members in sorted(by_task.items())},
    }


def merge(existing: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``existing`` with the task sections of ``new`` added (or replaced); the rest must agree."""
    for key in ("strategy", "preset"):
        if existing[key] != new[key]:
            raise SubmissionError(
                [f"cannot merge: the existing entry has {key} {existing[key]!r}, the new runs {new[key]!r}"]
            )
    merged = dict(existing)
    merged.update({k: new[k] for k in ("name", "description", "url")})
    merged["tasks"] = {**existing["tasks"], **new["tasks"]}
    merged["tasks"] = dict(sorted(merged["tasks"].items()))
    return merged


def rule_problems(entry: Mapping[str, Any], out: Path) -> list[str]:
    """What the publishing rules installed in :data:`RULES_GROUP` refuse in ``entry``, to be written to ``out``."""
    found: list[str] = []
    for point in sorted(entry_points(group=RULES_GROUP), key=lambda ep: ep.name):
        found.extend(point.load()(entry, Path(out)))
    return found


def write_entry(
    run_dirs: Sequence[Path],
    out: Path,
    name: str | None,
    description: str | None,
    url: str | None,
    merge_into: bool = False,
    with_gallery: bool = True,
    restart_on_strategy_change: bool = False,
    checked: bool = False,
) -> list[str]:
    """Build the entry from ``run_dirs`` (merged into ``out`` if asked), write it, return notes for the user.

    With ``with_gallery``, the runs' sample artifacts also go to the entry's gallery file
    (:func:`collapselab.formats.gallery.path_for`; merged like the entry). Notes list what
    the files hold and how to check them with the leaderboard's rules. With
    ``restart_on_strategy_change``, an existing entry whose strategy (name, parameters,
    citation) differs from the runs' is not merged but replaced: its sections were run by
    another strategy and cannot stand beside the new ones. With ``checked``, nothing is written
    when a publishing rule (:func:`rule_problems`) refuses the entry.
    """
    # the existing entry may hold a stale section of a task being re-run: it is checked after the merge
    existing = submission.read(out) if merge_into and Path(out).exists() else None
    name = name or (existing["name"] if existing else None)
    description = description or (existing["description"] if existing else None)
    url = url if url is not None else (existing["url"] if existing else None)
    if not name or not description:
        raise SubmissionError(["--name and --description are required (unless --merge reads them from an existing entry)"])
    runs = find_runs(list(run_dirs))
    entry = build(runs, name, description, url)
    restart_notes = []
    if existing is not None and restart_on_strategy_change and existing["strategy"] != entry["strategy"]:
        dropped = sorted(set(existing["tasks"]) - set(entry["tasks"]))
        restart_notes.append(f"  the strategy changed since {out} was written: the entry starts afresh"
                             + (f" (its sections for {', '.join(dropped)} are dropped)" if dropped else ""))
        existing, merge_into = None, False
    if existing is not None:
        entry = merge(existing, entry)
    refused = rule_problems(entry, out) if checked else []
    if refused:
        raise SubmissionError([*refused, "nothing written; the leaderboard would refuse this entry (write a local "
                                          "draft for comparison with --draft)"])
    samples, gallery_notes = _gallery(runs, entry, out, merge_into) if with_gallery else (None, [])
    submission.write(out, entry)
    notes = [f"wrote {out}: entry {entry['name']!r}, strategy {strategy_display(entry['strategy']['name'], entry['strategy']['params'])}, "
             f"preset {entry['preset']}"]
    notes += [f"  {task}: seeds {[run['seed'] for run in section['runs']]}, G={section['generations']}"
              for task, section in entry["tasks"].items()]
    notes += restart_notes + gallery_notes
    if samples is not None:
        path = gallery.path_for(out)
        gallery.write(path, samples, entry)
        shown = ", ".join(f"{task} (seed {s['seed']}, {len(s['generations'])} generations)" for task, s in samples["tasks"].items())
        notes.append(f"wrote {path}: samples of {shown}, {path.stat().st_size / 1024:.0f} KiB")
    elif with_gallery:
        notes.append("no sample artifacts in these runs: no gallery written")
        if gallery.path_for(out).exists():
            gallery.path_for(out).unlink()
            notes.append(f"removed {gallery.path_for(out)}, the gallery of an earlier version of this entry")
    notes.append(f"check it with the leaderboard's rules: collapselab leaderboard validate {out}")
    return notes


def _gallery(runs: Sequence[Run], entry: Mapping[str, Any], out: Path, merge_into: bool) -> tuple[dict[str, Any] | None, list[str]]:
    """The entry's gallery from ``runs`` and notes; with ``merge_into``, the existing gallery's
    other tasks are kept if it still fits the merged entry (else it is replaced)."""
    samples = artifacts.fitting_gallery(runs, entry["name"])
    notes: list[str] = []
    if merge_into:
        try:
            kept = gallery.read_for(out, entry)
        except SubmissionError as exc:
            kept = None
            notes.append(f"the existing gallery does not fit the merged entry ({exc.problems[0]}); it is replaced")
        if kept is not None:
            fresh = {run.task for run in runs}
            samples["tasks"] = dict(sorted({**{t: s for t, s in kept["tasks"].items() if t not in fresh},
                                            **samples["tasks"]}.items()))
    return (samples if samples["tasks"] else None), notes
