"""The generation loop: the protocol every strategy is run under.

    M_0 = fit(real)                                      generation 0 (the same for every strategy)
    for g in 1..G:
        S_g = curate(sample(M_{g-1}, sample_size))       synthetic data of generation g
        M_g = fit(training_pool(ctx_g), fit_options(ctx_g))
        record evaluate(M_g), composition, compute, seconds

After each generation the run directory is updated atomically (pool S_g, model M_g, records,
manifest), so a killed run resumes at the next generation and, because every
(generation, phase) has its own seed stream, ends with the same numbers as an uninterrupted
run. Strategies must keep no state between generations: all they know comes from the context.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from collapselab.contracts.pool import REAL, Pool
from collapselab.contracts.registry import source_sha256
from collapselab.contracts.strategy import Budget, Strategy, StrategyContext
from collapselab.contracts.task import Task
from collapselab.engine import guard, seeding
from collapselab.engine import rundir as results
from collapselab.engine.identity import RunIdentity, StrategyIdentity, TaskIdentity
from collapselab.errors import CollapseLabError, RunConflictError

POOLS = "pools"
MODELS = "models"
ARTIFACTS = "artifacts"


class RecordListener(Protocol):
    """Receives each generation's record as soon as it is written (tables, W&B...)."""

    def __call__(self, run_dir: Path, manifest: Mapping[str, Any], record: Mapping[str, Any]) -> None: ...


@dataclass
class RunSpec:
    """One run: a task, a strategy, a seed and a number of synthetic generations."""

    task: Task
    strategy: Strategy
    seed: int
    generations: int
    root: Path
    strategy_spec: str = ""
    command: Sequence[str] = field(default_factory=lambda: list(sys.argv))

    @property
    def identity(self) -> RunIdentity:
        return run_identity(self.task, self.strategy, self.seed)

    @property
    def directory(self) -> Path:
        return self.identity.directory(self.root)


def run_identity(task: Task, strategy: Strategy, seed: int) -> RunIdentity:
    """The identity of running ``strategy`` on ``task`` with ``seed``."""
    return RunIdentity(
        TaskIdentity(task.name, task.version, task.preset, dict(task.config), task.data_fingerprint(),
                     preset_config=task.presets[task.preset]),
        StrategyIdentity(strategy.name, dict(strategy.params), source_sha256(type(strategy)),
                         bool(strategy.uses_extra_real_data)),
        int(seed),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _composition(pool: Pool, fresh_real: int) -> dict[str, Any]:
    counts = pool.origin_counts()
    return {
        "real": counts.get(REAL, 0),
        "synthetic": {str(g): n for g, n in counts.items() if g != REAL},
        "total": len(pool),
        "fresh_real": fresh_real,
        "weighted": pool.weight is not None,
    }


def _manifest_identity(spec: RunSpec) -> dict[str, Any]:
    """The identity fields of the manifest, plus how the strategy was named and cited."""
    identity = spec.identity
    task, strategy = identity.task, identity.strategy
    return {
        "task": {"name": task.name, "version": task.version, "preset": task.preset, "config": dict(task.config),
                 "data": dict(task.data)},
        "strategy": {"name": strategy.name, "spec": spec.strategy_spec or strategy.name, "params": dict(strategy.params),
                     "citation": spec.strategy.citation, "uses_extra_real_data": strategy.uses_extra_real_data,
                     "source_sha256": strategy.source_sha256},
        "seed": identity.seed,
    }


def _check_resumable(directory: Path, existing: Mapping[str, Any], identity: RunIdentity) -> None:
    for what, old, new in RunIdentity.from_manifest(existing).differences(identity):
        raise RunConflictError(
            f"{directory} was made with a different {what} ({old!r}, now {new!r}); resuming would mix "
            "numbers from two set-ups. Choose another --out or delete that directory."
        )


class _Run:
    """The state of one run while it executes (kept out of the public API)."""

    def __init__(self, spec: RunSpec, listeners: Sequence[RecordListener]) -> None:
        self.spec = spec
        self.task = spec.task
        self.strategy = spec.strategy
        self.dir = spec.directory
        self.listeners = listeners
        self.identity = spec.identity
        self.manifest: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.synthetic: list[Pool] = []
        self.fresh_real = 0
        self.verifier: Any = None
        self.model: Any = None

    # ------------------------------------------------------------ directory
    def open(self) -> None:
        guard.call_strategy(self.strategy.name, "check_task", 0, self.strategy.check_task, self.task.describe())
        if (self.dir / results.MANIFEST).exists():
            existing = results.read_manifest(self.dir)
            _check_resumable(self.dir, existing, self.identity)
            self.records = results.read_records(self.dir)
            self.lines = [results.record_line(self.dir, r) for r in self.records]
            self.manifest = existing
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.manifest = {
                "schema_version": results.SCHEMA_VERSION,
                **_manifest_identity(self.spec),
                "generations": self.spec.generations,
                "environment": {},
                "status": "running",
                "error": None,
                "timings": {"started": _now(), "updated": _now(), "seconds": 0.0},
            }
        self.manifest["generations"] = max(self.spec.generations, len(self.records) - 1)
        self.manifest["environment"] = results.environment(self.task.device())
        self.manifest["command"] = list(self.spec.command)
        self.manifest["status"] = "running"
        self.manifest["error"] = None
        results.write_manifest(self.dir, self.manifest)

    def restore(self, real: Pool) -> None:
        """Reload S_1..S_{g-1}, M_0 and M_{g-1} of the generations already recorded."""
        done = len(self.records)
        if done == 0:
            return
        self.synthetic = [Pool.load(self._pool_path(g)) for g in range(1, done)]
        self.fresh_real = int(self.records[-1]["composition"]["fresh_real"])
        self.verifier = self.task.load_model(self._model_path(0))
        self.model = self.task.load_model(self._model_path(done - 1))
        for pool in self.synthetic:
            guard.check_pool(pool, f"stored pool in {self.dir}", real, {REAL, *range(1, done)}, allow_empty=True)

    def _pool_path(self, generation: int) -> Path:
        return self.dir / POOLS / f"gen-{generation:04d}.npz"

    def _model_path(self, generation: int) -> Path:
        return self.dir / MODELS / f"gen-{generation:04d}.model"

    def _save_model(self, model: Any, generation: int) -> None:
        path = self._model_path(generation)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        self.task.save_model(model, tmp)
        tmp.replace(path)

    def _drop_model(self, generation: int) -> None:
        if generation > 0:
            self._model_path(generation).unlink(missing_ok=True)

    # ---------------------------------------------------------- generations
    def context(self, generation: int, phase: str, real: Pool, with_score: bool = False) -> StrategyContext:
        seed = self.spec.seed
        task = self.task

        def score(pool: Pool) -> Any:
            return task.score(self.verifier, pool)

        draws = [0]

        def fresh(n: int) -> Pool:
            rng = seeding.stream(seed, generation, "fresh_real", index=draws[0])
            draws[0] += 1
            pool = task.fresh_real_pool(n, rng).with_origin(REAL)
            self.fresh_real += len(pool)
            return pool

        return StrategyContext(
            generation=generation,
            real=real,
            synthetic=tuple(self.synthetic),
            task=task.describe(),
            rng=seeding.stream(seed, generation, phase),
            budget=Budget(real_size=len(real), synthetic_size=task.synthetic_size()),
            _score=score if with_score else None,
            _fresh_real=fresh if self.strategy.uses_extra_real_data else None,
        )

    def generation(self, g: int, real: Pool) -> dict[str, Any]:
        seed, task, strategy, name = self.spec.seed, self.task, self.strategy, self.strategy.name
        seconds: dict[str, float] = dict.fromkeys(results.PHASE_SECONDS, 0.0)
        samples_drawn = 0
        options = dict(task.fit_options)
        if g == 0:
            pool = real
        else:
            ctx = self.context(g, "curate", real, with_score=True)
            n = guard.check_sample_size(
                guard.call_strategy(name, "sample_size", g, strategy.sample_size, ctx), f"{name}.sample_size()"
            )
            start = time.perf_counter()
            samples = task.sample(self.model, n, seeding.stream(seed, g, "sample")).with_origin(g)
            seconds["sample"] = time.perf_counter() - start
            samples_drawn = len(samples)
            start = time.perf_counter()
            curated = guard.call_strategy(name, "curate", g, strategy.curate, ctx, samples)
            seconds["curate"] = time.perf_counter() - start
            self.synthetic.append(guard.check_pool(curated, f"{name}.curate()", real, {g}))
            curated.save(self._pool_path(g))

            ctx = self.context(g, "strategy", real)
            start = time.perf_counter()
            pool = guard.call_strategy(name, "training_pool", g, strategy.training_pool, ctx)
            pool = guard.check_pool(pool, f"{name}.training_pool()", real, {REAL, *range(1, g + 1)})
            chosen = guard.call_strategy(name, "fit_options", g, strategy.fit_options, ctx)
            options = guard.check_fit_options(chosen, f"{name}.fit_options()", task.fit_options)
            seconds["strategy"] = time.perf_counter() - start

        start = time.perf_counter()
        fitted = task.fit(pool, options, seeding.stream(seed, g, "fit"))
        seconds["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics = guard.check_metrics(task.evaluate(fitted.model), task.name, g)
        seconds["evaluate"] = time.perf_counter() - start

        record: dict[str, Any] = {
            "generation": g,
            "metrics": metrics,
            "composition": _composition(pool, self.fresh_real),
            "compute": {**fitted.compute.as_dict(), "samples": samples_drawn},
            "seconds": seconds,
            "fit_options": options,
        }
        metrics.update(guard.check_theory(task.theory([*self.records, record]), task.name, g))

        start = time.perf_counter()
        artifacts_dir = self.dir / ARTIFACTS
        artifacts_dir.mkdir(exist_ok=True)
        names = task.write_artifacts(fitted.model, g, artifacts_dir, seeding.stream(seed, g, "artifacts"))
        seconds["artifacts"] = time.perf_counter() - start
        record["artifacts"] = [f"{ARTIFACTS}/{n}" for n in names]

        self._save_model(fitted.model, g)
        if g == 0:
            self.verifier = fitted.model
        previous = g - 1
        self.model = fitted.model
        self.lines.append(results.record_line(self.dir, record))
        results.write_record_lines(self.dir, self.lines)
        self.records.append(record)
        self._drop_model(previous)
        return record

    def finish(self, status: str, error: Mapping[str, Any] | None, elapsed: float) -> None:
        self.manifest["environment"].update(results.thread_settings())  # torch may be loaded by now
        self.manifest["status"] = status
        self.manifest["error"] = error
        self.manifest["timings"]["updated"] = _now()
        self.manifest["timings"]["seconds"] = round(float(self.manifest["timings"].get("seconds", 0.0)) + elapsed, 3)
        results.write_manifest(self.dir, self.manifest)


def execute(
    spec: RunSpec,
    listeners: Sequence[RecordListener] = (),
    progress: bool = True,
) -> results.Run:
    """Run (or resume) ``spec`` to generation ``spec.generations`` and return the run read back.

    Any exception (a plugin error, Ctrl-C) marks the run ``failed`` with the error in its
    manifest; the generations already recorded stay, and running again resumes after them.
    """
    run = _Run(spec, listeners)
    run.open()
    started = time.perf_counter()
    done = len(run.records)
    total = spec.generations + 1
    real = spec.task.real_pool()
    bar = tqdm(
        total=total,
        initial=min(done, total),
        desc=f"{spec.task.name} / {spec.strategy.name} / seed {spec.seed}",
        unit="gen",
        disable=not progress,
        leave=False,
        file=sys.stderr,
    )
    try:
        run.restore(real)
        for g in range(done, total):
            record = run.generation(g, real)
            bar.update(1)
            for listener in listeners:
                listener(run.dir, run.manifest, record)
            run.manifest["timings"]["updated"] = _now()
    except BaseException as exc:
        message = str(exc) if isinstance(exc, CollapseLabError) else f"{type(exc).__name__}: {exc}"
        error = {
            "generation": len(run.records),
            "type": type(exc).__name__,
            "message": message,
            "traceback": "".join(traceback.format_exception(exc))[-4000:],
        }
        with contextlib.suppress(Exception):  # the original error matters more than a failed status update
            run.finish("failed", error, time.perf_counter() - started)
        raise
    finally:
        bar.close()
    run.finish("complete", None, time.perf_counter() - started)
    return results.load_run(run.dir)

