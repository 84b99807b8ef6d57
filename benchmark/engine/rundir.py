"""Run directories: ``manifest.json``, ``generations.jsonl``, ``pools/``, ``models/``, ``artifacts/``.

Layout (one directory per run)::

    runs/<task>/<strategy label>/<preset label>/seed-<k>/

where the strategy label is the strategy's name, plus a hash of its parameters when it has
any, and the preset label is the preset name, plus a hash of the configuration when
``--set`` changed it. Every file is written atomically and every JSON file is strict
(no NaN/Infinity) with a ``schema_version``; loading validates and names the bad field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collapselab.engine.identity import RunIdentity
from collapselab.errors import ResultFileError
from collapselab.formats import records
from collapselab.formats.records import Manifest, Record
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_bytes, atomic_write_text

MANIFEST = "manifest.json"
GENERATIONS = "generations.jsonl"
POOLS = "pools"
MODELS = "models"
ARTIFACTS = "artifacts"
LOCK = ".lock"


def pool_path(directory: Path, generation: int) -> Path:
    return Path(directory) / POOLS / f"gen-{generation:04d}.npz"


def model_path(directory: Path, generation: int) -> Path:
    return Path(directory) / MODELS / f"gen-{generation:04d}.model"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksummed(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically and return its SHA-256 (of the bytes in hand: no re-read)."""
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def verify_checksum(directory: Path, relative: str, expected: str) -> None:
    """Raise :class:`ResultFileError` naming the file if it is missing or its SHA-256 differs."""
    path = Path(directory) / relative
    try:
        found = sha256_file(path)
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read ({exc.strerror or exc}); the run cannot resume from it") from None
    if found != expected:
        raise ResultFileError(
            f"{path}: the file changed since it was written (sha256 {found[:12]}..., recorded {expected[:12]}...); "
            "resuming from it would give other numbers. Restore it or delete the run directory."
        )


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files left by writes that a killed process never finished (``.*.tmp``)."""
    removed = []
    for path in Path(directory).rglob(".*.tmp*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_manifest(directory: Path, manifest: Manifest) -> None:
    data = records.as_json(manifest)
    strict_json.validate(data, records.MANIFEST_SCHEMA, str(Path(directory) / MANIFEST))
    atomic_write_text(Path(directory) / MANIFEST, strict_json.dumps(data, indent=2) + "\n")


def read_manifest(directory: Path) -> Manifest:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ResultFileError(f"{path}: missing; {directory} is not a run directory (or its manifest was deleted)")
    return records.read_manifest(strict_json.load_file(path), str(path))


def record_line(directory: Path, record: Record) -> str:
    """One validated strict-JSON line of ``generations.jsonl``."""
    data = records.as_json(record)
    strict_json.validate(data, records.RECORD_SCHEMA, f"{Path(directory) / GENERATIONS} (generation {record.generation})")
    return strict_json.dumps(data)


def write_record_lines(directory: Path, lines: Sequence[str]) -> None:
    """Rewrite ``generations.jsonl`` with ``lines`` (atomically: all lines or the old file)."""
    atomic_write_text(Path(directory) / GENERATIONS, "".join(line + "\n" for line in lines))


def read_records(directory: Path) -> list[Record]:
    path = Path(directory) / GENERATIONS
    if not path.exists():
        return []
    text = strict_json.read_text(path)
    found: list[Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        record = records.read_record(strict_json.loads(line, source), source)
        if record.generation != len(found):
            raise ResultFileError(f"{source}: field generation: expected {len(found)}, found {record.generation}")
        found.append(record)
    return found


@dataclass(frozen=True)
class Run:
    """A run directory read back from disk (validated), or a run of a submission file (``path`` the
    file, ``entry`` the entry's name)."""

    path: Path
    manifest: Manifest
    records: list[Record]
    entry: str | None = None

    @property
    def task(self) -> str:
        return self.manifest.task.name

    @property
    def identity(self) -> RunIdentity:
        return RunIdentity.from_manifest(self.manifest)

    @property
    def strategy_label(self) -> str:
        return self.identity.strategy.label

    @property
    def seed(self) -> int:
        return self.manifest.seed

    @property
    def complete(self) -> bool:
        return self.manifest.status == "complete"

    def curve(self, metric: str = "loss") -> list[float]:
        return [float(r.metrics[metric]) for r in self.records if metric in r.metrics]


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
