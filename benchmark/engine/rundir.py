"""Run directories: ``manifest.json``, ``generations.jsonl``, ``pools/``, ``models/``, ``artifacts/``.

Layout (one directory per run)::

    runs/<task>/<strategy label>/<preset label>/seed-<k>/

where the strategy label is the strategy's name, plus a hash of its parameters when it has
any, and the preset label is the preset name, plus a hash of the configuration when
``--set`` changed it. Every file is written atomically and every JSON file is strict
(no NaN/Infinity) with a ``schema_version``; loading validates and names the bad field.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.engine.identity import RunIdentity
from collapselab.errors import ResultFileError
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
GENERATIONS = "generations.jsonl"
PHASE_SECONDS = ("sample", "curate", "strategy", "fit", "evaluate", "artifacts")

_NUMBER = {"type": "number"}
_COUNT = {"type": "integer", "minimum": 0}

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema_version", "task", "strategy", "seed", "generations", "environment", "status", "timings"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "task": {
            "type": "object",
            "required": ["name", "version", "preset", "config"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "version": {"type": "string", "minLength": 1},
                "preset": {"type": "string", "minLength": 1},
                "config": {"type": "object"},
                "data": {"type": "object"},
            },
        },
        "strategy": {
            "type": "object",
            "required": ["name", "spec", "params", "uses_extra_real_data"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "spec": {"type": "string"},
                "params": {"type": "object"},
                "citation": {"type": "string"},
                "uses_extra_real_data": {"type": "boolean"},
                "source_sha256": {"type": ["string", "null"]},
            },
        },
        "seed": {"type": "integer", "minimum": 0},
        "generations": {"type": "integer", "minimum": 0},
        "environment": {"type": "object"},
        "status": {"enum": ["running", "complete", "failed"]},
        "error": {"type": ["object", "null"]},
        "timings": {"type": "object"},
    },
}

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["generation", "metrics", "composition", "compute", "seconds"],
    "properties": {
        "generation": _COUNT,
        "metrics": {"type": "object", "required": ["loss"], "additionalProperties": _NUMBER},
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
        "artifacts": {"type": "array", "items": {"type": "string"}},
    },
}


def environment(device: str) -> dict[str, Any]:
    """Versions and machine facts recorded in every manifest."""

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "collapselab": version("collapselab"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "torch": version("torch"),
        "platform": platform.platform(),
        "device": device,
        **thread_settings(),
    }


def thread_settings() -> dict[str, Any]:
    """Thread counts that change floating-point results (torch's, if loaded, and the env caps)."""
    torch = sys.modules.get("torch")
    return {
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    strict_json.validate(manifest, MANIFEST_SCHEMA, str(Path(directory) / MANIFEST))
    atomic_write_text(Path(directory) / MANIFEST, strict_json.dumps(manifest, indent=2) + "\n")


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    manifest = strict_json.load_file(path)
    strict_json.validate(manifest, MANIFEST_SCHEMA, str(path))
    return manifest


def record_line(directory: Path, record: Mapping[str, Any]) -> str:
    """One validated strict-JSON line of ``generations.jsonl``."""
    source = f"{Path(directory) / GENERATIONS} (generation {record.get('generation')})"
    strict_json.validate(record, RECORD_SCHEMA, source)
    return strict_json.dumps(record)


def write_record_lines(directory: Path, lines: Sequence[str]) -> None:
    """Rewrite ``generations.jsonl`` with ``lines`` (atomically: all lines or the old file)."""
    atomic_write_text(Path(directory) / GENERATIONS, "".join(line + "\n" for line in lines))


def read_records(directory: Path) -> list[dict[str, Any]]:
    path = Path(directory) / GENERATIONS
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {exc}") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        record = strict_json.loads(line, source)
        strict_json.validate(record, RECORD_SCHEMA, source)
        if record["generation"] != len(records):
            raise ResultFileError(f"{source}: field generation: expected {len(records)}, found {record['generation']}")
        records.append(record)
    return records


@dataclass(frozen=True)
class Run:
    """A run directory read back from disk (validated)."""

    path: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def task(self) -> str:
        return self.manifest["task"]["name"]

    @property
    def identity(self) -> RunIdentity:
        return RunIdentity.from_manifest(self.manifest)

    @property
    def strategy_label(self) -> str:
        return self.identity.strategy.label

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def complete(self) -> bool:
        return self.manifest["status"] == "complete"

    def curve(self, metric: str = "loss") -> list[float]:
        return [float(r["metrics"][metric]) for r in self.records if metric in r["metrics"]]


def load_run(directory: Path) -> Run:
    directory = Path(directory)
    return Run(directory, read_manifest(directory), read_records(directory))


def find_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run directory at or below ``paths`` (a run directory holds ``manifest.json``)."""
    found: dict[Path, None] = {}
    for path in paths:
        path = Path(path)
        if (path / MANIFEST).is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for manifest in sorted(path.rglob(MANIFEST)):
                found[manifest.parent.resolve()] = None
        else:
            raise ResultFileError(f"{path}: not a run directory or a folder of runs")
    return [load_run(p) for p in found]
