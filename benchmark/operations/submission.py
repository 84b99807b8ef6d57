"""Submission files: the strict, versioned JSON format of a leaderboard entry, and its validation.

One file holds one entry: one strategy with one parameter set, run at one preset on one or
more tasks. Per task it keeps, for every seed, the run's manifest and its generation records
(metrics, training-pool composition, compute, seconds), so the leaderboard is computed from
the numbers alone and never needs the strategy's code.

Validation follows the rules of the Open Graph Benchmark's leaderboards (Hu et al. 2020,
"Open Graph Benchmark", NeurIPS): the official evaluator's numbers, a fixed protocol (here the
``cpu`` preset, unchanged), and every seed reported (seeds 0, 1, 2 at least, contiguous from 0:
no seed picking). Every problem names the file and the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from collapselab.engine import rundir as results
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text
from collapselab.contracts.errors import CollapseLabError

SCHEMA_VERSION = 1
LEADERBOARD_PRESET = "cpu"
REQUIRED_SEEDS = (0, 1, 2)
MAX_BYTES = 4 * 1024 * 1024
MAX_ERRORS = 12
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
TASK_PATTERN = r"^[a-z0-9_]{1,64}$"
URL_PATTERN = r"^https?://[^\s\"'<>\\]+$"

_STRATEGY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "params", "citation", "uses_extra_real_data"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "params": {"type": "object"},
        "citation": {"type": "string", "maxLength": 500},
        "uses_extra_real_data": {"type": "boolean"},
    },
}

_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seed", "manifest", "records"],
    "properties": {
        "seed": {"type": "integer", "minimum": 0},
        "manifest": results.MANIFEST_SCHEMA,
        "records": {"type": "array", "minItems": 1, "items": results.RECORD_SCHEMA},
    },
}

_TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "config", "data", "generations", "runs"],
    "properties": {
        "version": {"type": "string", "minLength": 1},
        "config": {"type": "object"},
        "data": {"type": "object"},
        "generations": {"type": "integer", "minimum": 1},
        "runs": {"type": "array", "minItems": 1, "items": _RUN_SCHEMA},
    },
}

SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CollapseLab submission",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "name", "description", "url", "strategy", "preset", "tasks"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "description": {"type": "string", "minLength": 1, "maxLength": 2000},
        "url": {"type": ["string", "null"], "maxLength": 500, "pattern": URL_PATTERN},
        "strategy": _STRATEGY_SCHEMA,
        "preset": {"type": "string", "minLength": 1},
        "tasks": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": TASK_PATTERN},
            "additionalProperties": _TASK_SCHEMA,
        },
    },
}

_FRIENDLY = {
    ("name", "pattern"): "is not a safe entry name (it names files on the site): use 1-64 lowercase letters, "
    "digits, '.', '_' or '-', starting with a letter or digit",
    ("url", "pattern"): "must be an http:// or https:// address without spaces, quotes, backslashes or angle brackets",
}


class SubmissionError(CollapseLabError):
    """A submission file or the runs given to ``submit`` break the rules; lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n  ".join(["invalid submission:", *self.problems]) if len(self.problems) > 1 else self.problems[0])


@dataclass(frozen=True)
class Rules:
    """What a valid entry must satisfy. ``preset=None`` accepts any single preset; ``installed``
    checks each task section against the installed task (version, preset configuration)."""

    preset: str | None = LEADERBOARD_PRESET
    required_seeds: tuple[int, ...] = REQUIRED_SEEDS
    installed: bool = True


LEADERBOARD = Rules()
STRUCTURE_ONLY = Rules(preset=None, required_seeds=())
SELF_CONSISTENT = Rules(preset=None, required_seeds=(), installed=False)


def _schema_problems(data: Any, source: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(SUBMISSION_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    problems = []
    for error in errors[:MAX_ERRORS]:
        path = [str(p) for p in error.absolute_path]
        where = "/".join(path) or "(top level)"
        key = (where, error.validator)
        message = f"{error.instance!r} {_FRIENDLY[key]}" if key in _FRIENDLY else error.message
        problems.append(f"{source}: field {where}: {message}")
    if len(errors) > MAX_ERRORS:
        problems.append(f"{source}: ... and {len(errors) - MAX_ERRORS} more problem(s)")
    return problems


def _installed_problems(name: str, section: Mapping[str, Any], preset: str, field: str) -> list[str]:
    """The section against the installed task: known, same version, its preset unchanged."""
    from collapselab.contracts import registry

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
    if preset in cls.presets and dict(cls.presets[preset]) != section["config"]:
        changed = sorted(k for k in set(cls.presets[preset]) | set(section["config"])
                         if cls.presets[preset].get(k) != section["config"].get(k))
        problems.append(f"{field}/config: differs from preset {preset!r} in {changed}; entries run the preset unchanged")
    elif preset not in cls.presets:
        problems.append(f"{field}: task {name!r} has no preset {preset!r}")
    return problems


def _task_problems(name: str, section: Mapping[str, Any], entry: Mapping[str, Any], rules: Rules, source: str) -> list[str]:
    """The rules for one task section (the schema already holds)."""
    field = f"{source}: field tasks/{name}"
    problems = _installed_problems(name, section, entry["preset"], field) if rules.installed else []
    expected_generations = section["config"].get("generations")
    if section["generations"] != expected_generations:
        problems.append(
            f"{field}/generations: {section['generations']} generations, but the preset runs {expected_generations}"
        )

    seeds = [run["seed"] for run in section["runs"]]
    if len(set(seeds)) != len(seeds):
        problems.append(f"{field}/runs: seed(s) {sorted({s for s in seeds if seeds.count(s) > 1})} appear more than once")
    missing = sorted(set(rules.required_seeds) - set(seeds))
    if missing:
        problems.append(f"{field}/runs: missing seed(s) {missing}; every entry reports seeds {list(rules.required_seeds)} at least")
    elif rules.required_seeds and sorted(set(seeds)) != list(range(len(set(seeds)))):
        problems.append(
            f"{field}/runs: seeds {sorted(set(seeds))} skip some; report every seed from 0 up to the last one run "
            "(leaving seeds out is seed picking)"
        )

    sources = set()
    for index, run in enumerate(section["runs"]):
        problems.extend(_run_problems(f"{field}/runs/{index}", name, section, run, entry))
        sources.add(run["manifest"]["strategy"].get("source_sha256"))
    if len(sources) > 1:
        problems.append(f"{field}/runs: the seeds were run with different strategy code (source_sha256 differs)")
    return problems


def _run_problems(field: str, task: str, section: Mapping[str, Any], run: Mapping[str, Any], entry: Mapping[str, Any]) -> list[str]:
    manifest, records, strategy = run["manifest"], run["records"], entry["strategy"]
    expected = [
        ("manifest/seed", manifest["seed"], run["seed"]),
        ("manifest/task/name", manifest["task"]["name"], task),
        ("manifest/task/version", manifest["task"]["version"], section["version"]),
        ("manifest/task/preset", manifest["task"]["preset"], entry["preset"]),
        ("manifest/task/config", manifest["task"]["config"], section["config"]),
        ("manifest/task/data", manifest["task"].get("data", {}), section["data"]),
        ("manifest/strategy/name", manifest["strategy"]["name"], strategy["name"]),
        ("manifest/strategy/params", manifest["strategy"]["params"], strategy["params"]),
        ("manifest/strategy/uses_extra_real_data", manifest["strategy"]["uses_extra_real_data"],
         strategy["uses_extra_real_data"]),
        ("manifest/status", manifest["status"], "complete"),
        ("manifest/generations", manifest["generations"], section["generations"]),
    ]
    problems = [f"{field}/{what}: {found!r} does not match {want!r}" for what, found, want in expected if found != want]
    if len(records) != section["generations"] + 1:
        problems.append(f"{field}/records: {len(records)} generation records, expected {section['generations'] + 1} (0..G)")
    for index, record in enumerate(records):
        if record["generation"] != index:
            problems.append(f"{field}/records/{index}/generation: expected {index}, found {record['generation']}")
            break
        if record["composition"]["fresh_real"] and not strategy["uses_extra_real_data"]:
            problems.append(
                f"{field}/records/{index}/composition/fresh_real: extra real data used, but the strategy does not "
                "declare uses_extra_real_data"
            )
            break
    return problems


def problems(data: Any, source: str, rules: Rules = LEADERBOARD) -> list[str]:
    """Every rule ``data`` (a parsed submission) breaks, each naming ``source`` and the field."""
    found = _schema_problems(data, source)
    if found:
        return found
    if rules.preset is not None and data["preset"] != rules.preset:
        found.append(f"{source}: field preset: {data['preset']!r} is not the leaderboard preset {rules.preset!r}")
    for name, section in sorted(data["tasks"].items()):
        found.extend(_task_problems(name, section, data, rules, source))
    return found


def read(path: Path, rules: Rules = LEADERBOARD) -> dict[str, Any]:
    """Load and validate one submission file; :class:`SubmissionError` lists every problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SubmissionError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if size > MAX_BYTES:
        raise SubmissionError([f"{path}: file is {size:,} bytes; submissions are limited to {MAX_BYTES:,} bytes"])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SubmissionError([f"{path}: not valid JSON: {exc}"]) from None
    found = [f"{path}: field {where}: {value} is not allowed (strict JSON has no NaN or Infinity)"
             for where, value in _non_finite(data)] or problems(data, str(path), rules)
    if found:
        raise SubmissionError(found)
    return data


def read_stored(path: Path, rules: Rules = LEADERBOARD) -> dict[str, Any]:
    """:func:`read`, and the file must be named ``<name>.json``, as the leaderboard stores entries."""
    entry = read(path, rules)
    if Path(path).name != f"{entry['name']}.json":
        raise SubmissionError([f"{path}: field name: the entry {entry['name']!r} must be stored as {entry['name']}.json"])
    return entry


def _non_finite(value: Any, where: str = "") -> list[tuple[str, float]]:
    """(field, value) of every NaN or infinite number in a parsed JSON document."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(where or "(top level)", value)]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [hit for key, item in items for hit in _non_finite(item, f"{where}/{key}" if where else str(key))]


def write(path: Path, data: Mapping[str, Any], rules: Rules = STRUCTURE_ONLY) -> None:
    """Validate ``data`` and write it (strict JSON, sorted keys: the same entry gives the same bytes)."""
    found = problems(data, str(path), rules)
    if found:
        raise SubmissionError(found)
    text = strict_json.dumps(data, indent=1) + "\n"
    if len(text.encode()) > MAX_BYTES:
        raise SubmissionError([f"{path}: the entry would be {len(text.encode()):,} bytes; the limit is {MAX_BYTES:,}"])
    atomic_write_text(Path(path), text)


def check_files(paths: Sequence[Path], rules: Rules = LEADERBOARD) -> tuple[list[str], bool]:
    """``leaderboard validate``: one line per valid file, every problem of the others, and whether all passed."""
    lines, ok = [], True
    for path in paths:
        try:
            entry = read_stored(Path(path), rules)
        except SubmissionError as exc:
            ok = False
            lines.append(f"INVALID {path}")
            lines.extend(f"  {problem}" for problem in exc.problems)
            continue
        tasks = ", ".join(f"{task} (seeds {len(s['runs'])})" for task, s in entry["tasks"].items())
        lines.append(f"ok      {path}: entry {entry['name']!r}, preset {entry['preset']}, {tasks}")
    return lines, ok


def safe_name(name: str) -> bool:
    """Whether ``name`` is a valid entry name (safe as a file name on the site)."""
    return re.fullmatch(NAME_PATTERN, name) is not None


def curves(section: Mapping[str, Any], metric: str = "loss") -> dict[int, list[float]]:
    """seed -> metric per generation, for one task section (seeds missing the metric are left out)."""
    found = {}
    for run in section["runs"]:
        values = [record["metrics"].get(metric) for record in run["records"]]
        if all(v is not None for v in values):
            found[int(run["seed"])] = [float(v) for v in values]
    return found
