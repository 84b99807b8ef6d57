"""Where an entry's numbers come from, read from its runs' manifests: the task version of each
section, the git commits and collapselab versions that made the runs, and the newest run's date."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _recorded(entry: Mapping[str, Any], *keys: str) -> list[str]:
    """The distinct non-empty values at ``manifest[keys...]`` over every run of ``entry``, sorted."""
    found = set()
    for section in entry["tasks"].values():
        for run in section["runs"]:
            value: Any = run["manifest"]
            for key in keys:
                value = value.get(key) if isinstance(value, Mapping) else None
            if value:
                found.add(str(value))
    return sorted(found)


def provenance(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``task_versions`` (task -> version), ``commits``, ``collapselab`` (versions) and ``updated``
    (the newest run's ``timings.updated``, ``None`` when no run records one) of a validated entry."""
    updated = _recorded(entry, "timings", "updated")
    return {
        "task_versions": {task: section["version"] for task, section in sorted(entry["tasks"].items())},
        "commits": _recorded(entry, "environment", "git_commit"),
        "collapselab": _recorded(entry, "environment", "collapselab"),
        "updated": max(updated) if updated else None,
    }
