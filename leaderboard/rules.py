"""The leaderboard's rules for an entry, on top of the submission format.

They follow the Open Graph Benchmark's leaderboards (Hu et al. 2020, "Open Graph Benchmark",
NeurIPS): the official evaluator's numbers, a fixed protocol (the leaderboard preset of every
task, unchanged, at the installed task version) and every seed reported (seeds 0, 1, 2 at
least, contiguous from 0: no seed picking), made by the installed code from a clean checkout
(:mod:`collapselab.leaderboard.code_versions`). Every problem names the file and the field.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collapselab.contracts import registry
from collapselab.contracts.task import LEADERBOARD_PRESET
from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.formats import submission
from collapselab.leaderboard import code_versions
from collapselab.scoring import scorer

REQUIRED_SEEDS = (0, 1, 2)
#: Hosts of addresses that are placeholders or cannot be reached by a reader of the site.
PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net", "localhost", "127.0.0.1", "0.0.0.0")
#: An arXiv identifier (new style ``YYMM.NNNNN`` with an optional version, or old style ``archive/YYMMNNN``).
ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}(v\d+)?|[a-z-]+(\.[A-Z]{2})?/\d{7}(v\d+)?)$")
#: Every number of an entry stays within this magnitude (summaries of larger ones overflow).
MAX_MAGNITUDE = 1e12
#: The smallest generation-0 loss a collapse ratio may divide by.
MIN_LOSS = 1e-12
MAX_REPORTED = 12


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
    problems: list[str] = []
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


def _budget_problems(name: str, section: Mapping[str, Any], preset: str, field: str) -> list[str]:
    """Generation 0 spent the installed task's budget: tracks and extra compute are read against
    what generation 0 spent (:func:`collapselab.scoring.scorer.uses_extra_compute`)."""
    try:
        task = registry.make_task(name, preset)
    except CollapseLabError as exc:
        return [f"{field}: task {name!r} cannot be built here to check its budget: {exc}"]
    budget = {"examples": task.example_budget, "steps": task.step_budget or 0}
    for index, run in enumerate(section["runs"]):
        spent = run["records"][0]["compute"]
        wrong = [key for key, value in budget.items() if value is not None and spent[key] != value]
        if wrong:
            return [f"{field}/runs/{index}/records/0/compute/{wrong[0]}: generation 0 spent {spent[wrong[0]]!r}, "
                    f"but the task's standard fit spends {budget[wrong[0]]} (generation 0 is the loop's standard fit)"]
    return []


def stale_sections(entry: Mapping[str, Any], preset: str = LEADERBOARD_PRESET) -> dict[str, list[str]]:
    """task -> problems, for the sections of ``entry`` the installed tasks no longer accept
    (another task version, a changed preset, a task not installed, other task code at the same
    version, a shipped baseline's code changed since the section was run)."""
    found = {}
    for name, section in entry["tasks"].items():
        field = f"tasks/{name}"
        problems = _installed_problems(name, section, preset, field) + [
            p for p in (code_versions.task_code_problem(name, section, field),
                        code_versions.baseline_code_problem(entry, name, section, field)) if p]
        if problems:
            found[name] = problems
    return found


def url_problems(url: str | None, field: str) -> list[str]:
    """A link the site will show must look like a real page: no placeholder (``XXXX``, example.com,
    localhost), a host with a dot, and an arXiv address naming an identifier."""
    if url is None:
        return []
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    placeholder = "xxxx" in url.lower() or host in PLACEHOLDER_HOSTS or any(host.endswith("." + h) for h in PLACEHOLDER_HOSTS)
    if placeholder or "." not in host:
        return [f"{field}: {url!r} is a placeholder or an address readers cannot reach; give the paper's or code's "
                "public address, or leave --url out"]
    if host.endswith("arxiv.org") and parts.path.startswith(("/abs/", "/pdf/")):
        identifier = parts.path.split("/", 2)[2].removesuffix(".pdf")
        if not ARXIV_ID.match(identifier):
            return [f"{field}: {url!r} names no arXiv identifier (e.g. https://arxiv.org/abs/2404.01413)"]
    return []


def required_seeds(task: str, rules: Rules) -> tuple[int, ...]:
    """The seeds a section must report: at the leaderboard preset, every seed the task publishes
    (:attr:`collapselab.Task.leaderboard_seeds`, e.g. 10 for the regression task); else ``rules``'."""
    if rules.preset != LEADERBOARD_PRESET or not rules.installed or not rules.required_seeds:
        return rules.required_seeds
    try:
        count = registry.task_class(task).leaderboard_seeds
    except CollapseLabError:
        return rules.required_seeds
    return tuple(range(max(count, len(rules.required_seeds))))


def _seed_problems(section: Mapping[str, Any], field: str, required: tuple[int, ...]) -> list[str]:
    seeds = sorted({run["seed"] for run in section["runs"]})
    missing = sorted(set(required) - set(seeds))
    if missing:
        return [f"{field}/runs: missing seed(s) {missing}; every entry reports seeds {list(required)} at least"]
    if required and seeds != list(range(len(seeds))):
        return [f"{field}/runs: seeds {seeds} skip some; report every seed from 0 up to the last one run "
                "(leaving seeds out is seed picking)"]
    return []


def _number_problems(section: Mapping[str, Any], field: str, bounds: Mapping[str, tuple[float | None, float | None]]) -> list[str]:
    """Ranges: every number finite and below MAX_MAGNITUDE, each metric within the task's declared
    bounds (e.g. a loss cannot be negative), generation 0's loss positive (ratios divide by it)."""
    found = []
    for index, run in enumerate(section["runs"]):
        where = f"{field}/runs/{index}/records"
        for g, record in enumerate(run["records"]):
            numbers = [("metrics/" + k, v) for k, v in record["metrics"].items()]
            numbers += [("compute/" + k, v) for k, v in record["compute"].items()]
            numbers += [("seconds/" + k, v) for k, v in record["seconds"].items()]
            for key, value in numbers:
                if abs(value) > MAX_MAGNITUDE:
                    found.append(f"{where}/{g}/{key}: {value!r} is out of range (|x| <= {MAX_MAGNITUDE:g})")
            for metric, (low, high) in bounds.items():
                value = record["metrics"].get(metric)
                if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
                    found.append(f"{where}/{g}/metrics/{metric}: {value!r} is outside the task's range [{low}, {high}]")
            if found:
                return found[:MAX_REPORTED]
        if run["records"][0]["metrics"]["loss"] < MIN_LOSS:
            found.append(f"{where}/0/metrics/loss: generation 0's loss must be above {MIN_LOSS:g} (ratios divide by it)")
    return found


def _duplicate_problems(section: Mapping[str, Any], field: str) -> list[str]:
    """Two seeds whose loss curves agree within :data:`~collapselab.scoring.scorer.SAME_RUN_RTOL`
    are one run submitted twice, however its last bits were touched (seeds give independent runs)."""
    curves = sorted(submission.curves(section).items())
    found = []
    for index, (seed, curve) in enumerate(curves):
        twin = next((earlier for earlier, other in curves[:index] if scorer.curves_agree(other, curve)), None)
        if twin is not None:
            found.append(f"{field}/runs: seeds {twin} and {seed} have the same loss curve (within a relative "
                         f"{scorer.SAME_RUN_RTOL:g}); every seed must be its own run")
    return found[:MAX_REPORTED]


def problems(entry: Mapping[str, Any], source: str, rules: Rules = LEADERBOARD) -> list[str]:
    """Every leaderboard rule a well-formed ``entry`` breaks."""
    found = url_problems(entry["url"], f"{source}: field url")
    if rules.preset is not None and entry["preset"] != rules.preset:
        found.append(f"{source}: field preset: {entry['preset']!r} is not the leaderboard preset {rules.preset!r}")
    for name, section in sorted(entry["tasks"].items()):
        field = f"{source}: field tasks/{name}"
        bounds: Mapping[str, tuple[float | None, float | None]] = {"loss": (0.0, None)}
        if rules.installed:
            installed = _installed_problems(name, section, entry["preset"], field)
            found.extend(installed or _budget_problems(name, section, entry["preset"], field))
            with contextlib.suppress(CollapseLabError):
                bounds = registry.task_class(name).metric_bounds
        found.extend(_seed_problems(section, field, required_seeds(name, rules)))
        found.extend(_number_problems(section, field, bounds))
        found.extend(_duplicate_problems(section, field))
    found.extend(code_versions.dirty_problems(entry, source))
    if rules.installed:
        found.extend(code_versions.installed_problems(entry, source))
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
