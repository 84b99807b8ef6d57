"""The leaderboard's rules for an entry, on top of the submission format.

They follow the Open Graph Benchmark's leaderboards (Hu et al. 2020, "Open Graph Benchmark",
NeurIPS): the official evaluator's numbers, a fixed protocol (the leaderboard preset of every
task, unchanged, at the installed task version) and every seed reported (seeds 0, 1, 2 at
least, contiguous from 0: no seed picking). Every problem names the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.contracts.task import LEADERBOARD_PRESET
from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.operations import submission

REQUIRED_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Rules:
    """What an entry must satisfy. ``preset=None`` accepts any single preset; ``installed``
    checks each task section against the installed task (version, preset configuration)."""

    preset: str | None = LEADERBOARD_PRESET
    required_seeds: tuple[int, ...] = REQUIRED_SEEDS
    installed: bool = True


LEADERBOARD = Rules()


def _installed_problems(name: str, section: Mapping[str, Any], preset: str, field: str) -> list[str]:
    """The section against the installed task: known, same version, its preset unchanged."""
    try:
        cls = registry.task_class(name)
    except CollapseLabError as exc:
        return [f"{field}: unknown or unavailable task: {exc}"]
    problems = []
    if section["version"] != cls.version:
        problems.append(
            f"{field}/version: unknown task version {section['version']!r}; the installed {name} is version "
            f"{cls.version!r} (re-run the strategy on it)"
        )
    if preset not in cls.presets:
        problems.append(f"{field}: task {name!r} has no preset {preset!r}")
    elif dict(cls.presets[preset]) != section["config"]:
        changed = sorted(k for k in set(cls.presets[preset]) | set(section["config"])
                         if cls.presets[preset].get(k) != section["config"].get(k))
        problems.append(f"{field}/config: differs from preset {preset!r} in {changed}; entries run the preset unchanged")
    return problems


def _seed_problems(section: Mapping[str, Any], field: str, required: tuple[int, ...]) -> list[str]:
    seeds = sorted({run["seed"] for run in section["runs"]})
    missing = sorted(set(required) - set(seeds))
    if missing:
        return [f"{field}/runs: missing seed(s) {missing}; every entry reports seeds {list(required)} at least"]
    if required and seeds != list(range(len(seeds))):
        return [f"{field}/runs: seeds {seeds} skip some; report every seed from 0 up to the last one run "
                "(leaving seeds out is seed picking)"]
    return []


def problems(entry: Mapping[str, Any], source: str, rules: Rules = LEADERBOARD) -> list[str]:
    """Every leaderboard rule a well-formed ``entry`` breaks."""
    found = []
    if rules.preset is not None and entry["preset"] != rules.preset:
        found.append(f"{source}: field preset: {entry['preset']!r} is not the leaderboard preset {rules.preset!r}")
    for name, section in sorted(entry["tasks"].items()):
        field = f"{source}: field tasks/{name}"
        if rules.installed:
            found.extend(_installed_problems(name, section, entry["preset"], field))
        found.extend(_seed_problems(section, field, rules.required_seeds))
    return found


def read_entry(path: Path, rules: Rules = LEADERBOARD) -> dict[str, Any]:
    """A stored entry: the format holds, the file is named ``<name>.json`` and the rules hold."""
    entry = submission.load(path)
    found = submission.structure_problems(entry, str(path))
    if submission.schema_problems(entry, str(path)):
        raise SubmissionError(found)
    if Path(path).name != f"{entry['name']}.json":
        found.append(f"{path}: field name: the entry {entry['name']!r} must be stored as {entry['name']}.json")
    found.extend(problems(entry, str(path), rules))
    if found:
        raise SubmissionError(found)
    return entry
