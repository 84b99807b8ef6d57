"""The records of a run: one model per file format, from which the JSON schemas are generated.

A run directory holds one manifest (:class:`Manifest`, ``manifest.json``) and one record per
generation (:class:`Record`, a line of ``generations.jsonl``); a submission carries both per run
(:mod:`collapselab.formats.submission` embeds the same models). The pydantic models are the one
definition of these formats: the loop builds its records and manifests as these models, files are
written from them (:func:`as_json`) and read back into them (:func:`read_manifest`,
:func:`read_record`). :data:`MANIFEST_SCHEMA` and :data:`RECORD_SCHEMA` are generated from them
(:func:`~collapselab.formats.models.json_schema`) and check every file read back (from this machine,
a cluster, or a submission) with jsonschema first, naming the offending field. Objects may carry
fields beyond the ones named here (files written by newer code stay readable, and keep them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from collapselab.formats.models import Format, json_schema, keys_matching
from collapselab.storage import strict_json

SCHEMA_VERSION = 2
Status = Literal["running", "complete", "failed", "interrupted"]
STATUSES: tuple[Status, ...] = ("running", "complete", "failed", "interrupted")
PHASE_SECONDS = ("sample", "curate", "strategy", "fit", "evaluate", "artifacts")

Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}(?!\n)$")]
MAX_METRICS = 64


class TaskSection(Format):
    """The task a run ran: its identity, configuration, data fingerprint and source hash."""

    name: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    preset: str = Field(min_length=1, max_length=64)
    config: dict[str, Any]
    data: dict[str, Any] = Field(default_factory=dict)
    source_sha256: Sha256 | None = None  # the task package's .py files (absent in runs made before it was recorded)


class StrategySection(Format):
    """The strategy a run ran: how it was named, its parameters, citation and source hash."""

    name: str = Field(min_length=1, max_length=200)
    spec: str = Field(max_length=2000)
    params: dict[str, Any]
    citation: str = Field("", max_length=500)
    uses_extra_real_data: bool
    source_sha256: str | None = None


class RunError(Format):
    """How a failed or interrupted run stopped."""

    generation: Count  # the generation it stopped at (the records before it are durable)
    type: str  # the exception's type
    message: str
    traceback: str  # the end of the traceback


class Timings(Format):
    """When a run started and was last written (UTC, ISO 8601), and the seconds its sessions took."""

    started: str
    updated: str
    seconds: Seconds = 0.0


class Manifest(Format):
    """What a run is and how it went."""

    schema_version: Literal[2]
    task: TaskSection
    strategy: StrategySection
    seed: Count
    generations: int = Field(ge=0, le=10000)
    environment: dict[str, Any]
    status: Status
    error: RunError | None = None
    timings: Timings
    command: list[str] = Field(default_factory=list)


class Composition(Format):
    """What a generation's training pool held."""

    real: Count
    synthetic: dict[str, Count]  # origin generation -> items
    total: Count
    fresh_real: Count  # real items drawn beyond the real pool so far (oracle strategies)
    weighted: bool = False


class Compute(Format):
    """The compute a generation spent (any further counts a task records are counts too)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Count]

    examples: Count  # training examples processed (with repetition)
    steps: Count  # optimiser steps
    samples: Count  # samples drawn from the previous model


class Record(Format):
    """One generation of one run."""

    generation: Count
    metrics: dict[MetricName, float] = Field(max_length=MAX_METRICS, json_schema_extra=keys_matching(required=("loss",)))
    composition: Composition
    compute: Compute
    seconds: dict[str, Seconds]  # per phase (PHASE_SECONDS)
    fit_options: dict[str, Any] = Field(default_factory=dict)
    sampling_options: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    checksums: dict[str, Sha256] = Field(default_factory=dict)  # file in the run directory -> sha256
    shared: bool = False  # generation 0 reused from the seed's shared fit
    corrected: list[Count] = Field(default_factory=list)  # synthetic origins the task's expert changed


MANIFEST_SCHEMA: dict[str, Any] = json_schema(Manifest)
RECORD_SCHEMA: dict[str, Any] = json_schema(Record)


def as_json(model: BaseModel) -> dict[str, Any]:
    """A record or manifest as the JSON object its file holds: every field, in the model's order."""
    return model.model_dump(mode="json")


def read_manifest(data: Any, source: str) -> Manifest:
    """A parsed manifest, checked against :data:`MANIFEST_SCHEMA` (a bad one names ``source`` and the field)."""
    strict_json.validate(data, MANIFEST_SCHEMA, source)
    return Manifest.model_validate(data)


def read_record(data: Any, source: str) -> Record:
    """A parsed generation record, checked against :data:`RECORD_SCHEMA`."""
    strict_json.validate(data, RECORD_SCHEMA, source)
    return Record.model_validate(data)


def records_of(run: Mapping[str, Any]) -> list[Record]:
    """The records of a submission's run (already checked with the submission's schema), as models."""
    return [Record.model_validate(record) for record in run["records"]]
