"""Submission files: the strict, versioned JSON format of a leaderboard entry.

One file holds one entry: one strategy with one parameter set, run at one preset on one or
more tasks. Per task it keeps, for every seed, the run's manifest and its generation records
(metrics, training-pool composition, compute, seconds), so the leaderboard is computed from
the numbers alone and never needs the strategy's code.

This module is the format only: the models (:class:`Entry` and its parts, built on the run
formats :class:`~collapselab.formats.records.Manifest` and
:class:`~collapselab.formats.records.Record`) and the schema generated from them, bounded reading, and the structural rules that
make an entry self-consistent (every run's manifest matches its section, every generation is
there). The leaderboard's own rules (its preset, required seeds, installed task versions,
sanity ranges) live in :mod:`collapselab.leaderboard.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from collapselab.errors import ResultFileError, SubmissionError
from collapselab.formats import safe_text
from collapselab.formats.models import Format, json_schema, keys_matching
from collapselab.formats.records import Manifest, Record
from collapselab.storage import schema, strict_json
from collapselab.storage.atomic import atomic_write_text

SCHEMA_VERSION = 1
MAX_BYTES = 4 * 1024 * 1024
MAX_ERRORS = 12
MAX_GENERATIONS = 1000
MAX_SEEDS = 100
# (?!\n)$ : Python's $ also matches before a final newline, which a name must not end with
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}(?!\n)$"
TASK_PATTERN = r"^[a-z0-9_]{1,64}(?!\n)$"
URL_PATTERN = r"^https?://[^\s\"'<>\\]+(?!\n)$"

EntryName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
TaskName = Annotated[str, StringConstraints(pattern=TASK_PATTERN)]


class _Closed(Format):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


class EntryStrategy(_Closed):
    """The strategy an entry ran, as its runs' manifests name it."""

    name: str = Field(min_length=1, max_length=200)
    params: dict[str, Any]
    citation: str = Field(max_length=500)
    uses_extra_real_data: bool


class EntryRun(_Closed):
    """One seed: the run's manifest and every generation's record."""

    seed: int = Field(ge=0)
    manifest: Manifest
    records: list[Record] = Field(min_length=1, max_length=MAX_GENERATIONS + 1)


class EntryTask(_Closed):
    """An entry's section of one task: the task's version, configuration and data, and its runs."""

    version: str = Field(min_length=1, max_length=64)
    config: dict[str, Any] = Field(max_length=200)
    data: dict[str, Any] = Field(max_length=200)
    generations: int = Field(ge=1, le=MAX_GENERATIONS)
    runs: list[EntryRun] = Field(min_length=1, max_length=MAX_SEEDS)


class Entry(_Closed):
    """A leaderboard entry (``leaderboard/submissions/<name>.json``)."""

    schema_version: Literal[1]
    name: EntryName
    description: str = Field(min_length=1, max_length=2000)
    url: str | None = Field(max_length=500, pattern=URL_PATTERN)
    strategy: EntryStrategy
    preset: str = Field(min_length=1, max_length=64)
    tasks: dict[TaskName, EntryTask] = Field(min_length=1, max_length=64, json_schema_extra=keys_matching())


SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CollapseLab submission",
    **json_schema(Entry),
}

_FRIENDLY = {
    ("name", "pattern"): "is not a safe entry name (it names files on the site): use 1-64 lowercase letters, "
    "digits, '.', '_' or '-', starting with a letter or digit",
    ("url", "pattern"): "must be an http:// or https:// address without spaces, quotes, backslashes or angle brackets",
}



def schema_problems(data: Any, source: str) -> list[str]:
    errors = schema.errors(data, SUBMISSION_SCHEMA)
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




def structure_problems(data: Any, source: str) -> list[str]:
    """Every way ``data`` (a parsed submission) breaks the format, each naming ``source`` and the field."""
    found = schema_problems(data, source) or safe_text.text_problems(data, source, MAX_ERRORS)
    if found:
        return found
    for name, section in sorted(data["tasks"].items()):
        field = f"{source}: field tasks/{name}"
        seeds = [run["seed"] for run in section["runs"]]
        if len(set(seeds)) != len(seeds):
            found.append(f"{field}/runs: seed(s) {sorted({s for s in seeds if seeds.count(s) > 1})} appear more than once")
        expected_generations = section["config"].get("generations")
        if section["generations"] != expected_generations:
            found.append(f"{field}/generations: {section['generations']} generations, but the configuration runs "
                         f"{expected_generations}")
        sources, task_sources = set(), set()
        for index, run in enumerate(section["runs"]):
            found.extend(_run_problems(f"{field}/runs/{index}", name, section, run, data))
            sources.add(run["manifest"]["strategy"].get("source_sha256"))
            task_sources.add(run["manifest"]["task"].get("source_sha256"))
        if len(sources) > 1:
            found.append(f"{field}/runs: the seeds were run with different strategy code (source_sha256 differs)")
        if len(task_sources) > 1:
            found.append(f"{field}/runs: the seeds were run with different task code (task/source_sha256 differs)")
    return found


def load(path: Path) -> Any:
    """The parsed JSON of one submission file (a regular file of at most ``MAX_BYTES``), unchecked."""
    try:
        return strict_json.loads(strict_json.read_text(Path(path), MAX_BYTES), str(path))
    except ResultFileError as exc:
        raise SubmissionError([str(exc)]) from None


def read(path: Path) -> dict[str, Any]:
    """Load one submission file and check its format; :class:`SubmissionError` lists every problem."""
    data = load(path)
    found = structure_problems(data, str(path))
    if found:
        raise SubmissionError(found)
    return data


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Check ``data``'s format and write it (strict JSON, sorted keys: the same entry gives the same bytes)."""
    write_checked(path, data, structure_problems(data, str(path)), "entry", MAX_BYTES)


def write_checked(path: Path, data: Mapping[str, Any], found: list[str], what: str, max_bytes: int) -> None:
    """Write ``data`` as strict JSON (sorted keys) atomically, unless ``found`` lists problems or the
    file would exceed ``max_bytes``; :class:`SubmissionError` then says why (``what``: the file's kind)."""
    if found:
        raise SubmissionError(found)
    try:
        text = strict_json.dumps(data, indent=1) + "\n"
    except ValueError as exc:
        raise SubmissionError([f"{path}: cannot write the {what}: {exc}"]) from None
    if len(text.encode()) > max_bytes:
        raise SubmissionError([f"{path}: the {what} would be {len(text.encode()):,} bytes; the limit is {max_bytes:,}"])
    atomic_write_text(Path(path), text)


def safe_name(name: str) -> bool:
    """Whether ``name`` is a valid entry name (safe as a file name on the site)."""
    return re.search(NAME_PATTERN, name) is not None


def curves(section: Mapping[str, Any], metric: str = "loss") -> dict[int, list[float]]:
    """seed -> metric per generation, for one task section (seeds missing the metric are left out)."""
    found = {}
    for run in section["runs"]:
        values = [record["metrics"].get(metric) for record in run["records"]]
        if all(v is not None for v in values):
            found[int(run["seed"])] = [float(v) for v in values]
    return found
