"""The generation loop: the protocol every strategy is run under.

    M_0 = fit(real)                                      generation 0 (shared by every strategy of a seed)
    for g in 1..G:
        S_g = curate(sample(M_{g-1}, sample_size, sampling_options))   synthetic data of generation g
        M_g = fit(training_pool(ctx_g), fit_options(ctx_g))
        record evaluate(M_g), composition, compute, seconds, checksums

Every fit of a task with a step budget spends the budget the strategy asked for (by default
the preset's), whatever the pool's size. Every (generation, phase) has its own seed stream, so
a resumed run ends with the same numbers as an uninterrupted one. The run directory is
written atomically at checkpoints (after generation 0, after the last generation, and at
least every ``checkpoint_seconds`` in between), with a SHA-256 of every pool and model it
holds, verified on resume. One process holds a run directory at a time (a file lock).

The loop checks the strategy after every hook: its result must be a pool of the task's kind
whose items are items the loop produced (real items of the real pool, synthetic items of
their generation's samples) and the real pool must be unchanged. The strategy object is
built afresh every generation, so state kept on it cannot change the numbers. SIGTERM is
handled like Ctrl-C: the run is marked ``interrupted`` and resumes when run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from collapselab.contracts import registry
from collapselab.contracts.pool import REAL, Pool
from collapselab.contracts.registry import source_sha256
from collapselab.contracts.strategy import Strategy, TaskHooks
from collapselab.contracts.task import Task
from collapselab.engine import environment, guard, lock, rundir, sandbox, seeding, signals, sources
from collapselab.engine.generation0 import Generation0Store
from collapselab.engine.identity import RunIdentity, StrategyIdentity, TaskIdentity
from collapselab.engine.provenance import Ledger
from collapselab.engine.sandbox import StrategyHandle
from collapselab.errors import USER_ERRORS, CollapseLabError, PluginError, PoolError, ResultFileError, RunConflictError
from collapselab.formats import records

CHECKPOINT_SECONDS = 2.0


class RecordListener(Protocol):
    """Receives each generation's record as soon as it is computed (tables, W&B...)."""

    def __call__(self, run_dir: Path, manifest: Mapping[str, Any], record: Mapping[str, Any]) -> None: ...


@dataclass
class RunSpec:
    """One run: a task, a strategy, a seed and a number of synthetic generations.

    ``hook_timeout``: seconds a strategy hook may take (``None``: no limit).
    ``share_generation0``: reuse the seed's generation-0 fit stored under ``root`` (tasks with
    a step budget only; a closed-form fit costs less than the copy).
    ``checkpoint_seconds``: the longest time between durable checkpoints.
    """

    task: Task
    strategy: Strategy | StrategyHandle
    seed: int
    generations: int
    root: Path
    strategy_spec: str = ""
    command: Sequence[str] = field(default_factory=lambda: list(sys.argv))
    hook_timeout: float | None = None
    share_generation0: bool = True
    checkpoint_seconds: float = CHECKPOINT_SECONDS

    @property
    def identity(self) -> RunIdentity:
        return run_identity(self.task, self.strategy, self.seed)

    @property
    def directory(self) -> Path:
        return self.identity.directory(self.root)


def run_identity(task: Task, strategy: Strategy | StrategyHandle, seed: int) -> RunIdentity:
    """The identity of running ``strategy`` on ``task`` with ``seed``."""
    sha = strategy.source_sha256 if isinstance(strategy, StrategyHandle) else source_sha256(type(strategy))
    return RunIdentity(
        TaskIdentity(task.name, task.version, task.preset, dict(task.config), task.data_fingerprint(),
                     preset_config=task.presets[task.preset]),
        StrategyIdentity(strategy.name, dict(strategy.params), sha, bool(strategy.uses_extra_real_data),
                         from_file=isinstance(strategy, StrategyHandle) and registry.is_file_spec(strategy.spec)),
        int(seed),
    )


def _handle(spec: RunSpec) -> StrategyHandle:
    if isinstance(spec.strategy, StrategyHandle):
        return spec.strategy
    return sandbox.handle_of(spec.strategy, spec.strategy_spec)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _composition(pool: Pool, fresh_real: int) -> records.Composition:
    counts = pool.origin_counts()
    return {
        "real": counts.get(REAL, 0),
        "synthetic": {str(g): n for g, n in counts.items() if g != REAL},
        "total": len(pool),
        "fresh_real": fresh_real,
        "weighted": pool.weight is not None,
    }


HOOK_NAMES = tuple(f.name for f in dataclasses.fields(TaskHooks))


def _serve_hook(hooks: TaskHooks, strategy: str, hook: str, args: list[Any]) -> Any:
    """Call the task hook ``hook`` for the strategy's process, with its arguments checked first."""
    fn = getattr(hooks, hook, None) if hook in HOOK_NAMES else None
    if fn is None:
        raise PluginError(f"strategy {strategy!r} called the task hook {hook!r}, which is not offered here")
    expected = (int,) if hook == "fresh_real" else (Pool, float) if hook in ("verify", "correct") else (Pool,)
    if len(args) != len(expected) or not all(
            isinstance(a, Pool) if kind is Pool else isinstance(a, int | float) and not isinstance(a, bool)
            for a, kind in zip(args, expected)):
        raise PluginError(f"strategy {strategy!r} called the task hook {hook!r} with arguments of the wrong kind")
    return fn(*args)


def _manifest_identity(spec: RunSpec) -> dict[str, Any]:
    """The identity fields of the manifest, plus how the strategy was named and cited."""
    identity = spec.identity
    task, strategy = identity.task, identity.strategy
    return {
        "task": {"name": task.name, "version": task.version, "preset": task.preset, "config": dict(task.config),
                 "data": dict(task.data), "source_sha256": sources.task_source_sha256(type(spec.task))},
        "strategy": {"name": strategy.name, "spec": spec.strategy_spec or strategy.name, "params": dict(strategy.params),
                     "citation": spec.strategy.citation, "uses_extra_real_data": strategy.uses_extra_real_data,
                     "source_sha256": strategy.source_sha256},
        "seed": identity.seed,
    }


def _check_resumable(directory: Path, existing: Mapping[str, Any], identity: RunIdentity, task_source: str) -> None:
    recorded = existing["task"].get("source_sha256")
    changed = [] if recorded in (None, task_source) else [("task source (sha256)", recorded, task_source)]
    for what, old, new in RunIdentity.from_manifest(existing).differences(identity) + changed:
        raise RunConflictError(
            f"{directory} was made with a different {what} ({old!r}, now {new!r}); resuming would mix "
            "numbers from two set-ups. Choose another --out or delete that directory."
        )


def _sticky_dirty(before: Mapping[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """``now``, whose ``dirty`` stays true when an earlier session of the run was made from a dirty checkout."""
    if before.get("dirty") is True:
        now["dirty"] = True
    return now


def _write_model(task: Task, model: Any, path: Path) -> None:
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


class _Run:
    """The state of one run while it executes (kept out of the public API)."""

    def __init__(self, spec: RunSpec, listeners: Sequence[RecordListener]) -> None:
        self.spec = spec
        self.task = spec.task.for_seed(spec.seed)
        self.strategy = _handle(spec)
        self.name = self.strategy.name
        self.process: sandbox.StrategyProcess | None = None  # the strategy's own process, started in open()
        self.dir = spec.directory
        self.listeners = listeners
        self.identity = spec.identity
        self.manifest: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []
        self.durable = 0  # records on disk
        self.pending_pools: dict[int, Pool] = {}
        self.synthetic: list[Pool] = []
        self.fresh_real = 0
        self.model: Any = None
        self.model_on_disk = False  # the latest model's file is already in the run directory
        self.corrected: set[int] = set()  # synthetic origins the task's expert changed this generation
        self.pools_shared = False  # the strategy's template holds this run's pools
        self.ledger: Ledger | None = None  # provenance of the items strategies may return, built once per run
        self.last_checkpoint = time.perf_counter()

    # ------------------------------------------------------------ directory
    def open(self) -> None:
        sandbox.check_task(self.strategy, self.task)
        self.process = sandbox.StrategyProcess.shared(self.strategy.location, self.strategy.params,
                                                      self.strategy.source_sha256)
        if self.dir.exists():
            rundir.remove_stale_temporaries(self.dir)
        if (self.dir / rundir.MANIFEST).exists():
            existing = rundir.read_manifest(self.dir)
            _check_resumable(self.dir, existing, self.identity, sources.task_source_sha256(type(self.spec.task)))
            self.records = rundir.read_records(self.dir)
            self.manifest = existing
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.manifest = {
                "schema_version": records.SCHEMA_VERSION,
                **_manifest_identity(self.spec),
                "generations": self.spec.generations,
                "environment": {},
                "status": "running",
                "error": None,
                "timings": {"started": _now(), "updated": _now(), "seconds": 0.0},
            }
        self.durable = len(self.records)
        self.manifest["generations"] = max(self.spec.generations, len(self.records) - 1)
        self.manifest["environment"] = _sticky_dirty(self.manifest["environment"], environment.environment(self.task.device()))
        self.manifest["command"] = list(self.spec.command)
        self.manifest["status"] = "running"
        self.manifest["error"] = None
        rundir.write_manifest(self.dir, self.manifest)

    def restore(self) -> None:
        """Reload S_1..S_{g-1} and M_{g-1} of the generations on disk, checking their checksums."""
        done = len(self.records)
        if done == 0:
            return
        for g in range(1, done):
            self._verify_recorded(g, f"{rundir.POOLS}/{rundir.pool_path(self.dir, g).name}")
            try:
                pool = Pool.load(rundir.pool_path(self.dir, g))
            except PoolError as exc:
                raise ResultFileError(str(exc)) from None
            self.synthetic.append(guard.check_pool(pool, f"stored pool in {self.dir}", self.task.real_pool(), {g},
                                                   allow_empty=True).sealed())
        self.fresh_real = int(self.records[-1]["composition"]["fresh_real"])
        self.model = self._load_model(done - 1)

    def _verify_recorded(self, generation: int, relative: str) -> None:
        """The file ``relative`` (to the run directory) against the checksum generation ``generation`` recorded."""
        expected = self.records[generation].get("checksums", {}).get(relative)
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

    # ---------------------------------------------------------- generations
    def _hooks(self, generation: int, ledger: Ledger, phase_counter: Iterator[int]) -> TaskHooks:
        task, seed, offered = self.task, self.spec.seed, self.task.hooks()

        def rng() -> np.random.Generator:
            return seeding.stream(seed, generation, "hooks", index=next(phase_counter))

        def correct(pool: Pool, strength: float) -> Pool:
            fixed = task.correct(pool, float(strength), rng())
            guard.check_pool(fixed, f"task {task.name!r} correct()", pool, set(pool.origin_counts()), allow_empty=True)
            self.corrected.update(o for o in fixed.origin_counts() if o != REAL)
            for origin in fixed.origin_counts():
                ledger.add(origin, fixed.by_origin(origin))
            return fixed.sealed()

        def fresh(n: int) -> Pool:
            # checked here as well as in the context: that check runs in the strategy's process
            n = guard.check_sample_size(n, f"the size {self.name!r} gave fresh_real()", task.item_bytes())
            pool = task.fresh_real_pool(n, rng()).with_origin(REAL).sealed()
            ledger.add(REAL, pool)
            self.fresh_real += len(pool)
            return pool

        return TaskHooks(
            verify=(lambda pool, quality: task.verify(pool, float(quality), rng())) if "verify" in offered else None,
            correct=correct if "correct" in offered else None,
            reward=task.reward if "reward" in offered else None,
            features=task.features if "features" in offered else None,
            fresh_real=fresh if self.strategy.uses_extra_real_data and "fresh_real_pool" in offered else None,
        )

    def _job(self, g: int, real: Pool, hooks: TaskHooks) -> dict[str, Any]:
        """What the strategy's child needs to play generation g (its context, as data)."""
        task, seed = self.task, self.spec.seed
        return {
            "op": "generation", "generation": g, "task": sandbox.task_fields(task),
            "budget": {"real_size": len(real), "synthetic_size": task.synthetic_size(), "steps": task.step_budget,
                       "examples": task.example_budget},
            "rng": {phase: seeding.stream(seed, g, phase).bit_generator.state for phase in ("curate", "strategy")},
            "hooks": [name for name in HOOK_NAMES if getattr(hooks, name) is not None],
            "seed": int(seeding.stream(seed, g, "plugin_globals").integers(2**63)),
        }

    def _share_pools(self, real: Pool) -> None:
        """The strategy's template gets the pools it does not hold yet (all of them when this run starts with it)."""
        assert self.process is not None
        if not self.pools_shared:
            self.process.send_pools(real, list(self.synthetic), reset=True)
        else:
            self.process.send_pools(None, list(self.synthetic[self.process.sent:]), reset=False)
        self.pools_shared = True

    def _resolve(self, real: Pool, samples: list[Pool]) -> Callable[[str], Pool]:
        """Pools the strategy's child names instead of sending: the real pool, S_h, this generation's samples."""
        def resolve(name: str) -> Pool:
            kind, _, index = name.partition(":")
            if kind == "real":
                return real
            if kind == "samples" and samples:
                return samples[0]
            if kind == "synthetic" and index.isdigit() and 1 <= int(index) <= len(self.synthetic):
                return self.synthetic[int(index) - 1]
            raise PluginError(f"strategy {self.name!r} named an unknown pool {name!r}")
        return resolve

    def synthetic_generation(self, g: int, real: Pool, seconds: dict[str, float]) -> tuple[Pool, dict[str, Any], dict[str, Any], int]:
        """S_g and the training pool of generation g; returns (pool, fit options, sampling options, samples drawn)."""
        task, name, timeout = self.task, self.name, self.spec.hook_timeout
        if self.ledger is None:  # once per run (after a resume: over the restored pools)
            self.ledger = Ledger(real)
            for h, kept in enumerate(self.synthetic, start=1):
                self.ledger.add(h, kept, keep=True)
        ledger = self.ledger
        hooks = self._hooks(g, ledger, itertools.count())
        self._share_pools(real)
        assert self.process is not None
        drawn: list[Pool] = []
        with self.process.child(self._job(g, real, hooks), name, g) as child:
            child.serve = lambda hook, args: _serve_hook(hooks, name, hook, args)
            child.resolve = self._resolve(real, drawn)
            n = guard.check_sample_size(child.result("sample_size", timeout), f"{name}.sample_size()", task.item_bytes())
            sampling = guard.check_options(child.result("sampling_options", timeout), f"{name}.sampling_options()",
                                           task.sampling_options, "sampling")
            start = time.perf_counter()
            samples = task.sample(self.model, n, seeding.stream(self.spec.seed, g, "sample"), sampling).with_origin(g).sealed()
            seconds["sample"] = time.perf_counter() - start
            drawn.append(samples)
            ledger.add(g, samples)
            start = time.perf_counter()
            child.send(samples)
            curated = guard.check_pool(child.result("curate", timeout), f"{name}.curate()", real, {g})
            # items the loop rebuilt from the samples (the samples, a selection of them) need no check
            digests = None if curated.derives_from([samples]) else ledger.check(curated, f"{name}.curate() at generation {g}")
            ledger.check_real_unchanged(f"{name}.curate() at generation {g}")
            seconds["curate"] = time.perf_counter() - start
            curated = curated.sealed()
            self.synthetic.append(curated)
            self.pending_pools[g] = curated
            ledger.add(g, curated, keep=True, digests=digests)
            child.send(True)

            start = time.perf_counter()
            pool = guard.check_pool(child.result("training_pool", timeout), f"{name}.training_pool()", real,
                                    {REAL, *range(1, g + 1)})
            if not pool.derives_from([real, *self.synthetic, samples]):  # pools the loop rebuilt from its own are known
                ledger.check(pool, f"{name}.training_pool() at generation {g}")
            options = guard.check_options(child.result("fit_options", timeout), f"{name}.fit_options()", task.fit_options, "fit")
        ledger.check_real_unchanged(f"{name} at generation {g}")
        ledger.end_generation()
        seconds["strategy"] = time.perf_counter() - start
        return pool, options, sampling, len(samples)

    def fit_and_record(self, g: int, pool: Pool, options: dict[str, Any], sampling: dict[str, Any] | None,
                       samples: int, seconds: dict[str, float]) -> dict[str, Any]:
        task, seed = self.task, self.spec.seed
        start = time.perf_counter()
        fitted = task.fit(pool, options, seeding.stream(seed, g, "fit"))
        seconds["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics = guard.check_metrics(task.evaluate(fitted.model), task.name, g, task.metric_bounds)
        seconds["evaluate"] = time.perf_counter() - start
        record: dict[str, Any] = {
            "generation": g,
            "metrics": metrics,
            "composition": _composition(pool, self.fresh_real),
            "compute": {**fitted.compute.as_dict(), "samples": samples},
            "seconds": seconds,
            "fit_options": options,
        }
        if sampling is not None:
            record["sampling_options"] = sampling
        if self.corrected:
            record["corrected"] = sorted(self.corrected)
            self.corrected.clear()
        metrics.update(guard.check_theory(task.theory([*self.records, record]), task.name, g))
        start = time.perf_counter()
        artifacts = self.dir / rundir.ARTIFACTS
        artifacts.mkdir(exist_ok=True)
        names = task.write_artifacts(fitted.model, g, artifacts, seeding.stream(seed, g, "artifacts"))
        seconds["artifacts"] = time.perf_counter() - start
        record["artifacts"] = [f"{rundir.ARTIFACTS}/{n}" for n in names]
        self.model = fitted.model
        self.model_on_disk = False
        return record

    def generation_zero(self, real: Pool) -> dict[str, Any]:
        """M_0, from the seed's shared store when there is one, else fitted (and stored)."""
        seconds = dict.fromkeys(records.PHASE_SECONDS, 0.0)
        if not (self.spec.share_generation0 and self.task.step_budget is not None):
            return self.fit_and_record(0, real, dict(self.task.fit_options), None, 0, seconds)
        store = Generation0Store(self.spec.root, self.identity, self.task)
        with store.locked():
            stored = store.load()
            if stored is None:
                record = self.fit_and_record(0, real, dict(self.task.fit_options), None, 0, seconds)
                store.save(record, lambda path: _write_model(self.task, self.model, path), self.dir, record["artifacts"])
            else:
                record = {**stored, "shared": True}
            store.copy_into(self.dir, list(record["artifacts"]))
        self.model = self.task.load_model(rundir.model_path(self.dir, 0))  # the same object whether fitted or reused
        self.model_on_disk = True
        return record

    def checkpoint(self, force: bool) -> None:
        """Make every generation computed so far durable (pools, the latest model, records, manifest)."""
        due = time.perf_counter() - self.last_checkpoint >= self.spec.checkpoint_seconds
        if not (force or due) or self.durable == len(self.records):
            return
        latest = len(self.records) - 1
        for g, pool in sorted(self.pending_pools.items()):
            if g > latest:  # the samples of a generation that failed before its record
                continue
            path = rundir.pool_path(self.dir, g)
            self.records[g].setdefault("checksums", {})[f"{rundir.POOLS}/{path.name}"] = \
                rundir.write_checksummed(path, pool.to_bytes())
        self.pending_pools.clear()
        model = rundir.model_path(self.dir, latest)
        if not self.model_on_disk:
            _write_model(self.task, self.model, model)
        self.records[latest].setdefault("checksums", {})[f"{rundir.MODELS}/{model.name}"] = rundir.sha256_file(model)
        previous = self.durable - 1
        rundir.write_record_lines(self.dir, [rundir.record_line(self.dir, r) for r in self.records])
        self.durable = len(self.records)
        self.manifest["timings"]["updated"] = _now()
        rundir.write_manifest(self.dir, self.manifest)
        if 0 < previous < latest:
            rundir.model_path(self.dir, previous).unlink(missing_ok=True)
        self.last_checkpoint = time.perf_counter()

    def generation(self, g: int, real: Pool) -> dict[str, Any]:
        if g == 0:
            record = self.generation_zero(real)
        else:
            seconds = dict.fromkeys(records.PHASE_SECONDS, 0.0)
            pool, options, sampling, samples = self.synthetic_generation(g, real, seconds)
            record = self.fit_and_record(g, pool, options, sampling, samples, seconds)
        self.records.append(record)
        return record

    def finish(self, status: str, error: Mapping[str, Any] | None, elapsed: float) -> None:
        self.manifest["environment"].update(environment.thread_settings())  # torch may be loaded by now
        self.manifest["status"] = status
        self.manifest["error"] = error
        self.manifest["timings"]["updated"] = _now()
        self.manifest["timings"]["seconds"] = round(float(self.manifest["timings"].get("seconds", 0.0)) + elapsed, 3)
        rundir.write_manifest(self.dir, self.manifest)


def execute(
    spec: RunSpec,
    listeners: Sequence[RecordListener] = (),
    progress: bool = True,
) -> rundir.Run:
    """Run (or resume) ``spec`` to generation ``spec.generations`` and return the run read back.

    An error (a plugin error, a diverged fit) marks the run ``failed`` with the error in its
    manifest; Ctrl-C or SIGTERM mark it ``interrupted``. The generations already checkpointed
    stay, and running again resumes after them with identical numbers.
    """
    directory = spec.directory
    with lock.holding(directory / rundir.LOCK, f"run directory {directory}"), signals.terminate_as_interrupt():
        run = _Run(spec, listeners)
        run.open()
        started = time.perf_counter()
        total = spec.generations + 1
        done = len(run.records)
        bar = tqdm(total=total, initial=min(done, total), desc=f"{spec.task.name} / {spec.strategy.name} / seed {spec.seed}",
                   unit="gen", disable=not (progress and sys.stderr.isatty()), leave=False, file=sys.stderr)
        try:
            run.restore()
            real = run.task.real_pool().sealed()
            for g in range(done, total):
                record = run.generation(g, real)
                bar.update(1)
                for listener in listeners:
                    listener(run.dir, run.manifest, record)
                run.checkpoint(force=g == 0 or g == total - 1)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            with contextlib.suppress(Exception):  # keep what was computed; the original error matters more
                run.checkpoint(force=True)
            message = str(exc) if isinstance(exc, CollapseLabError) else f"{type(exc).__name__}: {exc}"
            error = {
                "generation": run.durable,
                "type": type(exc).__name__,
                "message": message,
                "traceback": "".join(traceback.format_exception(exc))[-4000:],
            }
            with contextlib.suppress(Exception):
                run.finish("interrupted" if interrupted else "failed", error, time.perf_counter() - started)
            raise
        finally:
            bar.close()
        run.finish("complete", None, time.perf_counter() - started)
    return rundir.load_run(directory)
