"""The leaderboard as plain-text tables (printed by ``collapselab leaderboard build``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate


def _score(summary: Mapping[str, Any] | None) -> str:
    if summary is None:
        return "n/a"
    if summary.get("ci_low") is None:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"


def overall(board: Mapping[str, Any]) -> str:
    """One table per track: rank, entry, overall score with CI, coverage, per-task score and L_G/L_0."""
    sections = []
    tasks = [t["name"] for t in board["tasks"]]
    for track in dict.fromkeys(e["track"] for e in board["entries"]):
        rows = []
        for entry in (e for e in board["entries"] if e["track"] == track):
            row = [entry["rank"] or "-", entry["name"], _score(entry["overall"]), f"{entry['coverage']}/{len(board['ranked_tasks'])}"]
            for task in tasks:
                found = entry["tasks"].get(task)
                row += ["-", "-"] if found is None else [_score(found["score"]), f"{found['ratio']['mean']:.3g}"]
            compute = entry["compute_ratio"]
            row += ["n/a" if compute is None else f"{compute:.2f}x", f"{100 * entry['real_fraction']:.0f}%"]
            rows.append(row)
        headers = ["rank", "entry", "overall score [95% CI]", "coverage"]
        for task in tasks:
            headers += [f"{task} score", f"{task} L_G/L_0"]
        headers += ["compute x replace", "real/gen"]
        sections.append(f"{track} track\n" + tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    return "\n\n".join(sections)
