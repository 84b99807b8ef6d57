"""The collapse profile (:mod:`collapselab.scoring.profile`) as the site shows it: per task, a table of
the definitions each entry collapses under, with the rule of each definition once, and per entry and
task a strip of one small cell per definition for the index.

Each cell has a mark that differs in shape, not only in colour (collapsed: a filled disc, not
collapsed: a ring, not measurable: a dash), its value and 95% interval in a ``title`` and the same
words as text for screen readers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collapselab.scoring import profile

#: definition -> (column label, what it means: Schaeffer et al. 2025, Sec. 2, numbered as there).
LABELS = {
    "risk_catastrophic": ("Risk ×2", "1. catastrophic increase of the population risk"),
    "risk_increase": ("Risk ↑", "2. any increase of the population risk"),
    "divergence": ("Diverges", "3. the risk diverges (keeps growing with the generations)"),
    "scaling_law": ("Scaling", "4. the scaling law changes"),
    "variance": ("Variance", "5. the variance of the samples collapses"),
    "modes": ("Modes", "6. the real data's modes are lost or entangled"),
    "tails": ("Tails", "7. the real tails disappear first"),
    "hallucination": ("Halluc.", "8. hallucinated data appear"),
}
#: verdict -> (CSS class, mark).
MARKS = {profile.COLLAPSED: ("collapsed", "●"), profile.NOT_COLLAPSED: ("not-collapsed", "○"),
         profile.NOT_MEASURABLE: ("not-measurable", "–")}


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def cell_text(field: Mapping[str, Any]) -> str:
    """``collapsed: 1.62 [1.36, 1.9]``, or ``not measurable: the reason``."""
    if field["verdict"] == profile.NOT_MEASURABLE or field.get("value") is None:
        return f"{field['verdict']}: {field['measure']}"
    interval = "" if field.get("ci_low") is None or field.get("ci_high") is None else \
        f" [{_number(field['ci_low'])}, {_number(field['ci_high'])}]"
    return f"{field['verdict']}: {_number(field['value'])}{interval}"


def cells(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """One cell per definition of a task row's profile: ``definition``, ``label``, ``kind`` (CSS class),
    ``mark``, ``text`` (verdict, value and interval) and ``title`` (the text with the measure)."""
    found = []
    for name in profile.DEFINITIONS:
        field = row["profile"][name]
        kind, mark = MARKS[field["verdict"]]
        text = cell_text(field)
        title = text if field["verdict"] == profile.NOT_MEASURABLE else f"{text} ({field['measure']})"
        found.append({"definition": name, "label": LABELS[name][0], "kind": kind, "mark": mark, "text": text,
                      "title": f"{LABELS[name][1]}: {title}"})
    return found


def summary(row: Mapping[str, Any]) -> str:
    """One sentence for screen readers: the definitions a task row collapses under, of how many measured."""
    fields = [row["profile"][name] for name in profile.DEFINITIONS]
    collapsed = [LABELS[f["definition"]][1][3:] for f in fields if f["verdict"] == profile.COLLAPSED]
    measured = sum(f["verdict"] != profile.NOT_MEASURABLE for f in fields)
    head = f"collapses under {len(collapsed)} of {measured} measurable definitions"
    return head + (": " + "; ".join(collapsed) if collapsed else "")


def table(rows: Sequence[Mapping[str, Any]], task: str) -> dict[str, Any]:
    """The task page's profile table: ``definitions`` (name, label, meaning and the distinct rules the
    entries' verdicts followed, in order of first use) and ``rows`` (entry name, cells, summary)."""
    definitions = []
    for name in profile.DEFINITIONS:
        rules = list(dict.fromkeys(entry["tasks"][task]["profile"][name]["rule"] for entry in rows))
        definitions.append({"name": name, "label": LABELS[name][0], "meaning": LABELS[name][1], "rules": rules})
    return {"definitions": definitions,
            "rows": [{"entry": entry["name"], "cells": cells(entry["tasks"][task]),
                      "summary": summary(entry["tasks"][task])} for entry in rows]}
