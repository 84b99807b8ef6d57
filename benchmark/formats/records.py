"""The records of a run: one model per file format, from which the JSON schemas are generated.

A run directory holds one manifest (:class:`Manifest`, ``manifest.json``) and one record per
generation (:class:`Record`, a line of ``generations.jsonl``); a submission carries both per run
(:mod:`collapselab.formats.submission` embeds the same schemas). The pydantic models are the one
definition of these formats: :data:`MANIFEST_SCHEMA` and :data:`RECORD_SCHEMA` are generated from
them (:func:`~collapselab.formats.models.json_schema`) and check every file read back (from this machine, a cluster, or a
submission) with jsonschema, naming the offending field. Objects may carry fields beyond the
ones named here (files written by newer code stay readable).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from collapselab.formats.models import Format, json_schema, keys_matching

SCHEMA_VERSION = 2
STATUSES = ("running", "complete", "failed", "interrupted")
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


class Manifest(Format):
    """What a run is and how it went. ``error`` (when it failed or was interrupted): the generation it
    stopped at, the exception's type, its message and the end of its traceback."""

    schema_version: Literal[2]
    task: TaskSection
    strategy: StrategySection
    seed: Count
    generations: int = Field(ge=0, le=10000)
    environment: dict[str, Any]
    status: Literal["running", "complete", "failed", "interrupted"]
    error: dict[str, Any] | None = None
    timings: dict[str, Any]
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
