"""``scores.csv``: the board's scores as a table, one row per entry and task, beside ``leaderboard.json``.

Columns: :data:`COLUMNS` (the cost columns: optimiser steps, samples drawn, examples processed and
time per generation in units of a standard fit, each relative to replace, and a run's wall
seconds; :func:`collapselab.leaderboard.aggregate.cost`), then one per collapse-profile definition
(:data:`collapselab.scoring.profile.DEFINITIONS`) holding its verdict. Numbers are written at full
precision, missing ones as empty cells. Text comes from submissions written by strangers, so every
text cell is neutralised against formula injection as OWASP recommends for CSV: a cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote, and the csv
module quotes separators, quotes and newlines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from collapselab.leaderboard import standing
from collapselab.scoring import profile

COLUMNS = ("entry", "track", "task", "score", "ci_low", "ci_high", "L_G/L_0", "synthetic_share", "extra_compute",
           "rank", "rank_band", *(f"{key}_x_replace" for key in ("steps", "samples", "examples", "time")), "wall_seconds_per_seed")
TRAILING = ("strategy", "description")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """``text`` that a spreadsheet reads as text, never as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _number(value: float | int | None) -> str:
    return "" if value is None else str(int(value)) if isinstance(value, int) else repr(float(value))


def header() -> list[str]:
    return [*COLUMNS, *profile.DEFINITIONS, *TRAILING]


def rows(board: Mapping[str, Any]) -> Iterator[list[str]]:
    """One row per entry and task it has a section on, in board order (tasks alphabetical)."""
    for entry in board["entries"]:
        band = entry.get("rank_band")
        for task, row in sorted(entry["tasks"].items()):
            score = row["score"] or {}
            yield [safe_text(entry["name"]), entry["track"], task, _number(score.get("mean")), _number(score.get("ci_low")),
                   _number(score.get("ci_high")), _number(row["ratio"]["mean"]), _number(row["synthetic_share"]),
                   "yes" if row["extra_compute"] else "no", _number(entry.get("rank")),
                   standing.band_text((int(band[0]), int(band[1]))) if band else "",
                   *(_number(row["cost"][f"{key}_ratio"]) for key in ("steps", "samples", "examples", "time_units")),
                   _number(row["cost"]["wall_seconds"]),
                   *(row["profile"][name]["verdict"] for name in profile.DEFINITIONS),
                   safe_text(entry["strategy"]), safe_text(entry["description"])]


def render(board: Mapping[str, Any]) -> str:
    """The whole CSV file (RFC 4180: comma-separated, CRLF line ends, quoted where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header())
    writer.writerows(rows(board))
    return out.getvalue()
