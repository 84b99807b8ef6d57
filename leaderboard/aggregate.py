"""From validated submissions to the leaderboard's numbers (the ``leaderboard.json`` of the site).

Per entry and task, over seeds: L_0, L_G, the collapse ratio L_G/L_0 and the normalised score
against the task's replace entry, paired by seed (:mod:`collapselab.scoring.scorer`); compute relative
to replace; the real data each generation trains on. The overall score is the mean of the
per-task scores; its 95% interval is a stratified percentile bootstrap (Davison & Hinkley 1997,
"Bootstrap Methods and their Application", section 3.2): seeds are resampled within each task
and the task means averaged. Entries that draw fresh real data (``uses_extra_real_data``) are
ranked in a separate track. Within a track entries are ranked by how many of the leaderboard's
tasks they cover, then by the overall score, so an entry cannot rise by leaving tasks out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.contracts.task import LEADERBOARD_PRESET
from collapselab.errors import SubmissionError
from collapselab.operations import submission
from collapselab.scoring import scorer
from collapselab.scoring.report import strategy_display

REFERENCE = "replace"
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
TRACKS = {False: "standard", True: "extra real data"}


def _summary(values: Sequence[float]) -> dict[str, Any]:
    return scorer.summarize(values).as_dict()


def overall_interval(per_task: Sequence[Sequence[float]]) -> tuple[float, float]:
    """95% stratified percentile-bootstrap interval of the mean over tasks of per-task seed means."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = np.zeros(BOOTSTRAP_RESAMPLES)
    for scores in per_task:
        x = np.asarray(scores, dtype=np.float64)
        picks = rng.integers(0, x.size, size=(BOOTSTRAP_RESAMPLES, x.size))
        means += x[picks].mean(axis=1)
    means /= len(per_task)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _is_reference(entry: Mapping[str, Any]) -> bool:
    return entry["strategy"]["name"] == REFERENCE and not entry["strategy"]["params"]


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


def _compute(records: Sequence[Mapping[str, Any]], key: str) -> float:
    return float(sum(r["compute"][key] for r in records[1:]))


def _real_fraction(records: Sequence[Mapping[str, Any]]) -> float:
    pool = records[0]["composition"]["total"]
    return float(np.mean([r["composition"]["real"] for r in records[1:]]) / pool) if pool else 0.0


def _extra_real(records: Sequence[Mapping[str, Any]]) -> float:
    pool = records[0]["composition"]["total"]
    return float(records[-1]["composition"]["fresh_real"] / pool) if pool else 0.0


def _ratio_of_means(ours: Mapping[int, float], theirs: Mapping[int, float]) -> float | None:
    base = float(np.mean(list(theirs.values())))
    return float(np.mean(list(ours.values()))) / base if base > 0 else None


def band(curves: Mapping[int, Sequence[float]]) -> dict[str, list[float | None]]:
    """Mean and 95% bootstrap band per generation over seeds."""
    stacked = np.array([curve for _, curve in sorted(curves.items())], dtype=np.float64)
    stats = [scorer.summarize(stacked[:, g]) for g in range(stacked.shape[1])]
    return {"mean": [s.mean for s in stats], "low": [s.ci_low for s in stats], "high": [s.ci_high for s in stats]}


def task_row(section: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers of one entry on one task (``reference``: the replace entry's section)."""
    loss = submission.curves(section)
    generations = section["generations"]
    metrics = sorted({k for run in section["runs"] for r in run["records"] for k in r["metrics"]} - {"loss"})
    row: dict[str, Any] = {
        "seeds": sorted(loss),
        "generations": generations,
        "initial": _summary([c[0] for c in loss.values()]),
        "final": _summary([c[generations] for c in loss.values()]),
        "ratio": _summary([c[generations] / c[0] for c in loss.values()]),
        "score": None,
        "seed_scores": [],
        "compute_ratio": None,
        "samples_ratio": None,
        "real_fraction": float(np.mean(list(_per_seed(section, _real_fraction).values()))),
        "extra_real_fraction": float(np.mean(list(_per_seed(section, _extra_real).values()))),
        "fit_seconds": float(np.mean([sum(r["seconds"].get("fit", 0.0) for r in run["records"]) for run in section["runs"]])),
        "curve": band(loss),
        "ratio_curve": band({s: [v / c[0] for v in c] for s, c in loss.items()}),
        "metrics": {},
    }
    for metric in metrics:
        values = submission.curves(section, metric)
        if values:
            row["metrics"][metric] = {"final": _summary([c[generations] for c in values.values()]), "curve": band(values)}
    if reference is not None:
        scores = scorer.paired_scores(loss, submission.curves(reference), generations)
        row["seed_scores"] = scores
        row["score"] = _summary(scores) if scores else None
        for key, name in (("compute_ratio", "examples"), ("samples_ratio", "samples")):
            row[key] = _ratio_of_means(
                _per_seed(section, lambda rs, n=name: _compute(rs, n)), _per_seed(reference, lambda rs, n=name: _compute(rs, n))
            )
    return row


def _overall(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    scored = [row["seed_scores"] for row in rows.values() if row["seed_scores"]]
    if not scored:
        return None
    low, high = overall_interval(scored)
    return {"mean": float(np.mean([np.mean(s) for s in scored])), "ci_low": low, "ci_high": high, "tasks": len(scored)}


def _geometric_mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and v > 0]
    return float(math.exp(np.mean(np.log(present)))) if present else None


def _task_info(name: str, section: Mapping[str, Any], reference: str | None) -> dict[str, Any]:
    cls = registry.task_class(name)
    meta = cls.metadata
    return {
        "name": name,
        "version": section["version"],
        "generations": section["generations"],
        "modality": meta.modality,
        "description": meta.description,
        "citation": meta.citation,
        "loss_unit": meta.loss_unit,
        "secondary_metrics": dict(meta.secondary_metrics),
        "reference": reference,
    }


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
        holder = entries[refs[task]] if task in refs else next(e for _, e in sorted(entries.items()) if task in e["tasks"])
        tasks.append(_task_info(task, holder["tasks"][task], refs.get(task)))
    ranked_tasks = [t["name"] for t in tasks if t["reference"] is not None]
    rows = []
    for name, entry in sorted(entries.items()):
        per_task = {
            task: task_row(section, entries[refs[task]]["tasks"][task] if task in refs else None)
            for task, section in sorted(entry["tasks"].items())
        }
        overall = _overall(per_task)
        rows.append(
            {
                "name": name,
                "description": entry["description"],
                "url": entry["url"],
                "strategy": strategy_display(entry["strategy"]["name"], entry["strategy"]["params"]),
                "citation": entry["strategy"]["citation"],
                "track": TRACKS[entry["strategy"]["uses_extra_real_data"]],
                "reference": _is_reference(entry),
                "overall": overall,
                "coverage": 0 if overall is None else overall["tasks"],
                "compute_ratio": _geometric_mean([row["compute_ratio"] for row in per_task.values()]),
                "real_fraction": float(np.mean([row["real_fraction"] for row in per_task.values()])),
                "extra_real_fraction": float(np.mean([row["extra_real_fraction"] for row in per_task.values()])),
                "tasks": per_task,
                "rank": None,
            }
        )
    for track in TRACKS.values():
        members = [r for r in rows if r["track"] == track and r["overall"] is not None]
        members.sort(key=lambda r: (-r["coverage"], -r["overall"]["mean"], r["name"]))
        for rank, row in enumerate(members, start=1):
            row["rank"] = rank
    rows.sort(key=lambda r: (list(TRACKS.values()).index(r["track"]), r["rank"] is None, r["rank"] or 0, r["name"]))
    return {
        "schema_version": 1,
        "preset": next(iter(entries.values()))["preset"] if entries else LEADERBOARD_PRESET,
        "reference": REFERENCE,
        "tasks": tasks,
        "ranked_tasks": ranked_tasks,
        "entries": rows,
    }
