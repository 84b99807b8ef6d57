"""The leaderboard as plain-text tables (printed by ``collapselab leaderboard build``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate


def score_text(summary: Mapping[str, Any] | None) -> str:
    """A score summary as ``mean [low, high]`` (``[unbounded]`` without an interval, ``n/a`` without a score)."""
    if summary is None:
        return "n/a"
    if summary.get("ci_low") is None:
        return f"{summary['mean']:.3f} [unbounded]"
    return f"{summary['mean']:.3f} [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"


def _rows(board: Mapping[str, Any], names: list[str]) -> list[list[Any]]:
    by_name = {e["name"]: e for e in board["entries"]}
    tasks = [t["name"] for t in board["tasks"]]
    rows = []
    for name in names:
        entry = by_name[name]
        rank = entry["rank"] or (f"({entry['reference_kind']})" if entry["reference"] else "-")
        row = [rank, name, score_text(entry["overall"]), f"{entry['coverage']}/{len(board['ranked_tasks'])}"]
        for task in tasks:
            found = entry["tasks"].get(task)
            row += ["-", "-"] if found is None else [score_text(found["score"]), f"{found['ratio']['mean']:.3g}"]
        compute = entry["compute_ratio"]
        share = entry["synthetic_share"]
        row += ["n/a" if compute is None else f"{compute:.2f}x", f"{100 * entry['real_fraction']:.0f}%",
                "n/a" if share is None else f"{100 * share:.0f}%"]
        rows.append(row)
    return rows


def overall(board: Mapping[str, Any]) -> str:
    """Per track (and compute flag): its reference rows and ranked entries (those covering every ranked
    task), then the partial-coverage ones."""
    tasks = [t["name"] for t in board["tasks"]]
    headers = ["rank", "entry", "overall score [95% CI]", "coverage"]
    for task in tasks:
        headers += [f"{task} score", f"{task} L_G/L_0"]
    headers += ["examples x replace", "real/gen", "synthetic share"]
    sections = []
    for track in board["tracks"]:
        for title, names in ((f"{track['name']} track", track["references"] + track["ranked"]),
                             (f"{track['name']} track (partial coverage: not ranked)", track["partial"])):
            if names:
                sections.append(title + "\n" + tabulate(_rows(board, names), headers=headers, tablefmt="simple",
                                                        disable_numparse=True))
    unranked = [t["name"] for t in board["tasks"] if not t["ranked"]]
    if unranked:
        sections.append("not ranked (replace's degradation fails its one-sided t-test or there is no replace entry): "
                        + ", ".join(unranked))
    return "\n\n".join(sections)
