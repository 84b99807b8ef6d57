"""Generation 0 is one fit per (task, seed), shared by every strategy of that seed.

M_0 = fit(real pool, the task's default fit options, seed stream (seed, 0, "fit")) does not
depend on the strategy: every strategy of a seed pairs on the same M_0 (the pairing the scorer
relies on), so it is trained once. The first run of a seed stores it under
``<runs root>/.generation0/<task>/<preset label>/seed-<k>/``; later runs copy its model, record
and artifacts. The store's key holds everything the fit depends on: the task's identity and
seed, a hash of the task's and the toolkit's source code, and the facts that change
floating-point results (library versions, thread settings, BLAS kernel, CPU, device). An entry
with another key is rebuilt, never used. A lock makes a second process wait for the first.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collapselab.contracts.task import Task
from collapselab.engine import environment, lock, rundir, sources
from collapselab.engine.identity import RunIdentity
from collapselab.errors import ResultFileError
from collapselab.formats import records
from collapselab.formats.records import Record
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text

STORE = ".generation0"
KEY = "key.json"
RECORD = "record.json"
MODEL = "model.file"


def source_hash(task: Task) -> str:
    """SHA-256 over the source files of the task's package and of the task toolkit."""
    import collapselab.toolkit as toolkit

    return sources.folders_sha256([Path(inspect.getfile(type(task))).parent, Path(inspect.getfile(toolkit)).parent])


def store_key(identity: RunIdentity, task: Task) -> dict[str, Any]:
    """What M_0 depends on: the task's identity and the seed (never the strategy), the code, the numerics."""
    env = environment.environment(task.device())
    of_task = identity.task
    return {
        "task": {"name": of_task.name, "version": of_task.version, "preset": of_task.preset, "config": dict(of_task.config),
                 "data": dict(of_task.data)},
        "seed": identity.seed,
        "source": source_hash(task),
        "environment": {k: env[k] for k in (*environment.NUMERICS_FACTS, "python", "device", "cpu_count")},
    }


class Generation0Store:
    """The shared generation 0 of one (task, seed) under a runs root."""

    def __init__(self, root: Path, identity: RunIdentity, task: Task) -> None:
        self.directory = Path(root) / STORE / identity.task.name / identity.task.label / f"seed-{identity.seed}"
        self.key = strict_json.loads(strict_json.dumps(store_key(identity, task)))  # as the key file reads back

    @contextmanager
    def locked(self) -> Iterator[None]:
        with lock.holding(self.directory / rundir.LOCK, f"shared generation 0 {self.directory}", wait=True):
            yield

    def load(self) -> Record | None:
        """The stored record, if an entry with this key is complete; ``None`` otherwise."""
        try:
            if strict_json.load_file(self.directory / KEY) != self.key:
                return None
            stored = strict_json.load_file(self.directory / RECORD)
            record = records.read_record(stored.get("record"), str(self.directory / RECORD))
        except ResultFileError:
            return None
        model = self.directory / MODEL
        if not model.is_file() or rundir.sha256_file(model) != stored.get("model_sha256"):
            return None
        return record

    def save(self, record: Record, write_model: Callable[[Path], None], run_dir: Path, names: list[str]) -> None:
        """Store ``record``, the model ``write_model`` writes and the artifact files ``names`` of ``run_dir``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        model = self.directory / MODEL
        write_model(model)
        for name in names:
            (self.directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(run_dir) / name, self.directory / name)
        atomic_write_text(self.directory / RECORD,
                          strict_json.dumps({"record": records.as_json(record), "model_sha256": rundir.sha256_file(model)}, indent=1))
        atomic_write_text(self.directory / KEY, strict_json.dumps(self.key, indent=1))

    def copy_into(self, run_dir: Path, names: list[str]) -> None:
        """Copy the stored model and the artifacts ``names`` into a run directory."""
        target = rundir.model_path(run_dir, 0)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.directory / MODEL, target)
        for name in names:
            destination = Path(run_dir) / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.directory / name, destination)
