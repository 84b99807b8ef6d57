"""``collapselab leaderboard rank FILE``: where an entry would rank against the published board.

The file passes the same validation as ``leaderboard validate`` beside the published entries
(it replaces a published entry of its name), then the board is aggregated with it by the one
scorer. Per table (track and compute flag) the entry is in: its rank among the ranked entries,
the entries whose overall 95% interval overlaps its own (a rank it cannot be told apart from),
and per task its score against the table's best on that task. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collapselab.errors import SubmissionError
from collapselab.leaderboard import aggregate, rules, validate
from collapselab.leaderboard.text import score_text


def overlapping(row: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of ``others`` whose overall interval overlaps ``row``'s (an unbounded interval overlaps all)."""
    mine = row["overall"]
    found = []
    for other in others:
        theirs = other["overall"]
        if other["name"] == row["name"] or theirs is None:
            continue
        if mine.get("ci_low") is None or theirs.get("ci_low") is None or (
                theirs["ci_low"] <= mine["ci_high"] and mine["ci_low"] <= theirs["ci_high"]):
            found.append(other["name"])
    return found


def _task_lines(row: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for task, found in sorted(row["tasks"].items()):
        if found["score"] is None:
            lines.append(f"    {task}: no score (no paired replace section)")
            continue
        rivals = [(m["tasks"][task]["score"]["mean"], m["name"]) for m in members
                  if not m["reference"] and task in m["tasks"] and m["tasks"][task]["score"] is not None]
        best_score, best = max(rivals)
        lead = "best of the table" if best == row["name"] else f"best: {best} {best_score:.3f}"
        lines.append(f"    {task}: {score_text(found['score'])}, L_G/L_0 {found['ratio']['mean']:.3g}; {lead}")
    return lines


def describe(board: Mapping[str, Any], name: str) -> list[str]:
    """Lines saying where ``name`` ranks in each table of ``board``."""
    rows = {row["name"]: row for row in board["entries"]}
    row = rows[name]
    lines = []
    for table in board["tracks"]:
        members = [rows[n] for n in table["references"] + table["ranked"] + table["partial"]]
        if name not in {m["name"] for m in members}:
            continue
        head = f"{table['name']}: "
        if row["reference"]:
            lines.append(head + f"a reference row ({row['reference_kind']}), shown, not ranked")
        elif row["rank"] is None:
            missing = sorted(set(board["ranked_tasks"]) - {t for t, r in row["tasks"].items() if r["score"] is not None})
            lines.append(head + f"not ranked: it lacks a score on {', '.join(missing)} (ranked entries cover every "
                                "ranked task)")
        else:
            ranked = [rows[n] for n in table["ranked"]]
            ties = overlapping(row, ranked)
            lines.append(head + f"rank {row['rank']} of {len(ranked)}, overall {score_text(row['overall'])}"
                         + (f"; its interval overlaps {', '.join(ties)}" if ties else "; no interval overlaps it"))
        share = row["synthetic_share"]
        lines.append(f"    synthetic share {'n/a' if share is None else f'{100 * share:.0f}%'}"
                     + ("; extra compute" if row["extra_compute"] else ""))
        lines.extend(_task_lines(row, members))
    return lines


def rank(path: Path, submissions: Path, policy: rules.Rules = rules.LEADERBOARD) -> tuple[list[str], bool]:
    """Lines for ``path`` against the entries in ``submissions``, and whether it was valid."""
    published, _ = validate.load_entries(submissions, policy) if submissions.is_dir() else ({}, [])
    lines, ok = validate.check_files([path], policy, published)
    if not ok:
        return lines, False
    entry = rules.read_entry(path, policy)
    try:
        board = aggregate.aggregate({**published, entry["name"]: entry})
    except SubmissionError as exc:
        return [*lines, *exc.problems], False
    replaced = " (replacing the published entry of that name)" if entry["name"] in published else ""
    return [f"{entry['name']} against {len(published)} published entries{replaced}:",
            *describe(board, entry["name"])], True
