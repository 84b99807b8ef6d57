"""A run's directory while the loop runs: its manifest, its records, and the pools and models they
checksum; opened (new or resumed), restored after a stop, checkpointed, and finished.

Nothing here decides what a generation computes (that is :mod:`collapselab.engine.generation`);
the store only makes it durable and reads it back. Files are written atomically; every pool and
model carries a SHA-256 in the record of its generation, verified when a resumed run reads it.
Between checkpoints only the latest model is kept on disk (``models/0`` and ``models/G`` stay).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collapselab.contracts.pool import Pool
from collapselab.contracts.task import Task
from collapselab.engine import environment, guard, rundir
from collapselab.engine.identity import RunIdentity
from collapselab.errors import USER_ERRORS, PoolError, ResultFileError, RunConflictError
from collapselab.formats import records
from collapselab.formats.records import Manifest, Record, RunError, Status


def now() -> str:
    """The current UTC time as the manifests record it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_model(task: Task, model: Any, path: Path) -> None:
    """``task.save_model`` into a uniquely named temporary file, then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        task.save_model(model, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Restored:
    """What a resumed run needs from the generations on disk: S_1..S_{g-1}, the real items drawn
    beyond the real pool so far, and M_{g-1}."""

    synthetic: list[Pool]
    fresh_real: int
    model: Any


def _check_resumable(directory: Path, existing: Manifest, identity: RunIdentity, task_source: str) -> None:
    recorded = existing.task.source_sha256
    changed = [] if recorded in (None, task_source) else [("task source (sha256)", recorded, task_source)]
    for what, old, new in RunIdentity.from_manifest(existing).differences(identity) + changed:
        raise RunConflictError(
            f"{directory} was made with a different {what} ({old!r}, now {new!r}); resuming would mix "
            "numbers from two set-ups. Choose another --out or delete that directory."
        )


def _carried_environment(directory: Path, before: Mapping[str, Any], now: dict[str, Any], generation: int) -> dict[str, Any]:
    """``now``, carrying what earlier sessions of the run recorded: ``dirty`` stays true once a session
    ran from a dirty checkout, and a session that resumes at ``generation`` with other numerics (BLAS
    kernel, threads, CPU, library versions) than the last one adds ``generation`` to
    :data:`environment.NUMERICS_CHANGED`: such a run gives valid numbers, but no single set-up
    reproduces them bit for bit, which ``collapselab reproduce`` reads there."""
    if before.get("dirty") is True:
        now["dirty"] = True
    changed_at = list(before.get(environment.NUMERICS_CHANGED, []))
    changes = environment.numerics_changes(before, now) if generation > 0 and before else []
    if changes:
        changed_at.append(generation)
        print(f"collapselab: warning: {directory} resumes at generation {generation} with other numerics than it "
              f"started ({'; '.join(changes)}): its numbers will not reproduce bit for bit", file=sys.stderr)
    if changed_at:
        now[environment.NUMERICS_CHANGED] = changed_at
    return now


class RunStore:
    """One run directory, held by one process (the caller holds its lock)."""

    def __init__(self, directory: Path, task: Task, checkpoint_seconds: float) -> None:
        self.dir = directory
        self.task = task
        self.checkpoint_seconds = checkpoint_seconds
        self.manifest: Manifest | None = None
        self.records: list[Record] = []
        self.computes = True  # whether this session computes any generation (set by :meth:`open`)
        self.durable = 0  # records on disk
        self._pending_pools: dict[int, Pool] = {}
        self._model: Any = None
        self._model_on_disk = False  # the latest model's file is already in the run directory
        self._last_checkpoint = time.perf_counter()

    def open(self, identity: RunIdentity, identity_fields: Mapping[str, Any], task_source: str, generations: int,
             command: Sequence[str]) -> Manifest:
        """Resume the directory (refused if it was made with another identity or task source) or start it."""
        if self.dir.exists():
            rundir.remove_stale_temporaries(self.dir)
        if (self.dir / rundir.MANIFEST).exists():
            existing = rundir.read_manifest(self.dir)
            _check_resumable(self.dir, existing, identity, task_source)
            self.records = rundir.read_records(self.dir)
            manifest = existing
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            manifest = Manifest.model_validate({
                "schema_version": records.SCHEMA_VERSION, **identity_fields, "generations": generations,
                "environment": {}, "status": "running", "timings": {"started": now(), "updated": now()},
            })
        self.durable = len(self.records)
        # a session that only reopens a finished run computes nothing: the environment and command
        # stay those of the sessions that made its numbers
        self.computes = len(self.records) <= generations
        manifest.generations = max(generations, len(self.records) - 1)
        if self.computes:
            manifest.environment = _carried_environment(self.dir, manifest.environment,
                                                        environment.environment(self.task.device()), len(self.records))
            manifest.command = list(command)
        manifest.status, manifest.error = "running", None
        rundir.write_manifest(self.dir, manifest)
        self.manifest = manifest
        return manifest

    def restore(self, real: Pool) -> Restored | None:
        """S_1..S_{g-1} and M_{g-1} of the generations on disk, their checksums checked (``None``: none yet)."""
        done = len(self.records)
        if done == 0:
            return None
        synthetic = []
        for g in range(1, done):
            self._verify_recorded(g, f"{rundir.POOLS}/{rundir.pool_path(self.dir, g).name}")
            try:
                pool = Pool.load(rundir.pool_path(self.dir, g))
            except PoolError as exc:
                raise ResultFileError(str(exc)) from None
            synthetic.append(guard.check_pool(pool, f"stored pool in {self.dir}", real, {g}, allow_empty=True).sealed())
        self._model = self._load_model(done - 1)
        self._model_on_disk = True
        return Restored(synthetic, self.records[-1].composition.fresh_real, self._model)

    def _verify_recorded(self, generation: int, relative: str) -> None:
        """The file ``relative`` (to the run directory) against the checksum generation ``generation`` recorded."""
        expected = self.records[generation].checksums.get(relative)
        if expected is None:
            raise ResultFileError(f"{self.dir / rundir.GENERATIONS}: generation {generation} records no checksum of {relative}")
        rundir.verify_checksum(self.dir, relative, expected)

    def _load_model(self, generation: int) -> Any:
        path = rundir.model_path(self.dir, generation)
        self._verify_recorded(generation, f"{rundir.MODELS}/{path.name}")
        try:
            return self.task.load_model(path)
        except USER_ERRORS:
            raise
        except Exception as exc:  # a truncated or foreign file: one line, not a traceback
            raise ResultFileError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from None

    def add(self, record: Record, model: Any, pool: Pool | None, model_on_disk: bool) -> None:
        """A computed generation: its record, its model M_g and its kept synthetic pool S_g (durable at the next
        checkpoint; ``model_on_disk``: M_g's file is already in the directory)."""
        if pool is not None:
            self._pending_pools[record.generation] = pool
        self.records.append(record)
        self._model = model
        self._model_on_disk = model_on_disk

    def checkpoint(self, force: bool) -> None:
        """Make every generation added so far durable (pools, the latest model, records, manifest), when
        ``force`` or when ``checkpoint_seconds`` have passed since the last checkpoint."""
        due = time.perf_counter() - self._last_checkpoint >= self.checkpoint_seconds
        if not (force or due) or self.durable == len(self.records):
            return
        latest = len(self.records) - 1
        for g, pool in sorted(self._pending_pools.items()):
            path = rundir.pool_path(self.dir, g)
            self.records[g].checksums[f"{rundir.POOLS}/{path.name}"] = rundir.write_checksummed(path, pool.to_bytes())
        self._pending_pools.clear()
        model = rundir.model_path(self.dir, latest)
        if not self._model_on_disk:
            write_model(self.task, self._model, model)
            self._model_on_disk = True
        self.records[latest].checksums[f"{rundir.MODELS}/{model.name}"] = rundir.sha256_file(model)
        previous = self.durable - 1
        rundir.write_record_lines(self.dir, [rundir.record_line(self.dir, r) for r in self.records])
        self.durable = len(self.records)
        manifest = self._opened()
        manifest.timings.updated = now()
        rundir.write_manifest(self.dir, manifest)
        if 0 < previous < latest:
            rundir.model_path(self.dir, previous).unlink(missing_ok=True)
        self._last_checkpoint = time.perf_counter()

    def finish(self, status: Status, error: RunError | None, elapsed: float) -> None:
        """Record how this session of the run ended and the seconds it took."""
        manifest = self._opened()
        if self.computes:
            manifest.environment.update(environment.thread_settings())  # torch may be loaded by now
        manifest.status, manifest.error = status, error
        manifest.timings.updated = now()
        manifest.timings.seconds = round(manifest.timings.seconds + elapsed, 3)
        rundir.write_manifest(self.dir, manifest)

    def _opened(self) -> Manifest:
        if self.manifest is None:
            raise RuntimeError("the run store was not opened")
        return self.manifest
