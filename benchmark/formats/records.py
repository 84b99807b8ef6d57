"""The records of a run, typed, beside the JSON schemas that validate them on disk.

A run directory holds one manifest (:class:`Manifest`) and one record per generation
(:class:`Record`). The TypedDicts say what the code may rely on; the schemas check every file
read back (from this machine, a cluster, or a submission) and name the offending field.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

SCHEMA_VERSION = 2
STATUSES = ("running", "complete", "failed", "interrupted")
PHASE_SECONDS = ("sample", "curate", "strategy", "fit", "evaluate", "artifacts")


class Composition(TypedDict):
    """What a generation's training pool held."""

    real: int
    synthetic: dict[str, int]  # origin generation -> items
    total: int
    fresh_real: int  # real items drawn beyond the real pool so far (oracle strategies)
    weighted: NotRequired[bool]


class ComputeRecord(TypedDict):
    examples: int  # training examples processed (with repetition)
    steps: int  # optimiser steps
    samples: int  # samples drawn from the previous model


class Record(TypedDict):
    """One generation of one run (a line of ``generations.jsonl``)."""

    generation: int
    metrics: dict[str, float]
    composition: Composition
    compute: ComputeRecord
    seconds: dict[str, float]
    fit_options: NotRequired[dict[str, Any]]
    sampling_options: NotRequired[dict[str, Any]]
    artifacts: NotRequired[list[str]]
    checksums: NotRequired[dict[str, str]]  # file in the run directory -> sha256
    shared: NotRequired[bool]  # generation 0 reused from the seed's shared fit


class TaskSection(TypedDict):
    name: str
    version: str
    preset: str
    config: dict[str, Any]
    data: dict[str, Any]
    source_sha256: NotRequired[str | None]  # the task package's .py files (absent in runs made before it was recorded)


class StrategySection(TypedDict):
    name: str
    spec: str
    params: dict[str, Any]
    citation: str
    uses_extra_real_data: bool
    source_sha256: str | None


class RunError(TypedDict):
    generation: int
    type: str
    message: str
    traceback: str


class Manifest(TypedDict):
    """What a run is and how it went (``manifest.json``)."""

    schema_version: int
    task: TaskSection
    strategy: StrategySection
    seed: int
    generations: int
    environment: dict[str, Any]
    status: Literal["running", "complete", "failed", "interrupted"]
    error: RunError | None
    timings: dict[str, Any]
    command: NotRequired[list[str]]


_NUMBER = {"type": "number"}
_COUNT = {"type": "integer", "minimum": 0}
_METRIC = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,63}(?!\n)$"}

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema_version", "task", "strategy", "seed", "generations", "environment", "status", "timings"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "task": {
            "type": "object",
            "required": ["name", "version", "preset", "config"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "version": {"type": "string", "minLength": 1, "maxLength": 64},
                "preset": {"type": "string", "minLength": 1, "maxLength": 64},
                "config": {"type": "object"},
                "data": {"type": "object"},
                "source_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
            },
        },
        "strategy": {
            "type": "object",
            "required": ["name", "spec", "params", "uses_extra_real_data"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "spec": {"type": "string", "maxLength": 2000},
                "params": {"type": "object"},
                "citation": {"type": "string", "maxLength": 500},
                "uses_extra_real_data": {"type": "boolean"},
                "source_sha256": {"type": ["string", "null"]},
            },
        },
        "seed": {"type": "integer", "minimum": 0},
        "generations": {"type": "integer", "minimum": 0, "maximum": 10000},
        "environment": {"type": "object"},
        "status": {"enum": list(STATUSES)},
        "error": {"type": ["object", "null"]},
        "timings": {"type": "object"},
        "command": {"type": "array", "items": {"type": "string"}},
    },
}

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["generation", "metrics", "composition", "compute", "seconds"],
    "properties": {
        "generation": _COUNT,
        "metrics": {"type": "object", "required": ["loss"], "propertyNames": _METRIC, "maxProperties": 64,
                    "additionalProperties": _NUMBER},
        "composition": {
            "type": "object",
            "required": ["real", "synthetic", "total", "fresh_real"],
            "properties": {
                "real": _COUNT,
                "synthetic": {"type": "object", "additionalProperties": _COUNT},
                "total": _COUNT,
                "fresh_real": _COUNT,
                "weighted": {"type": "boolean"},
            },
        },
        "compute": {
            "type": "object",
            "required": ["examples", "steps", "samples"],
            "additionalProperties": _COUNT,
        },
        "seconds": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "fit_options": {"type": "object"},
        "sampling_options": {"type": "object"},
        "artifacts": {"type": "array", "items": {"type": "string"}},
        "checksums": {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "shared": {"type": "boolean"},
        "corrected": {"type": "array", "items": _COUNT},
    },
}
