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

:func:`execute` is that loop; a generation's computation is
:class:`~collapselab.engine.generation_step.GenerationStep` and the run directory (resume,
checkpoints, the manifest) is :class:`~collapselab.engine.run_store.RunStore`.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from collapselab.contracts import registry
from collapselab.contracts.strategy import Strategy
from collapselab.contracts.task import Task
from collapselab.engine import lock, rundir, sandbox, signals, sources
from collapselab.engine.generation0 import Generation0Store
from collapselab.engine.generation_step import GenerationStep
from collapselab.engine.identity import RunIdentity, StrategyIdentity, TaskIdentity
from collapselab.engine.run_store import RunStore
from collapselab.engine.sandbox import StrategyHandle
from collapselab.errors import CollapseLabError
from collapselab.formats.records import Manifest, Record, RunError, StrategySection, TaskSection

CHECKPOINT_SECONDS = 2.0


class RecordListener(Protocol):
    """Receives each generation's record as soon as it is computed (tables, W&B...)."""

    def __call__(self, run_dir: Path, manifest: Manifest, record: Record) -> None: ...


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
    sha = strategy.source_sha256 if isinstance(strategy, StrategyHandle) else registry.source_sha256(type(strategy))
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


def _manifest_identity(spec: RunSpec) -> dict[str, Any]:
    """The identity fields of the manifest, plus how the strategy was named and cited."""
    identity = spec.identity
    task, strategy = identity.task, identity.strategy
    return {
        "task": TaskSection(name=task.name, version=task.version, preset=task.preset, config=dict(task.config),
                            data=dict(task.data), source_sha256=sources.task_source_sha256(type(spec.task))),
        "strategy": StrategySection(name=strategy.name, spec=spec.strategy_spec or strategy.name, params=dict(strategy.params),
                                    citation=spec.strategy.citation, uses_extra_real_data=strategy.uses_extra_real_data,
                                    source_sha256=strategy.source_sha256),
        "seed": identity.seed,
    }


def _error(exc: BaseException, generation: int) -> RunError:
    """How a run stopped, as its manifest records it."""
    return RunError(
        generation=generation,
        type=type(exc).__name__,
        message=str(exc) if isinstance(exc, CollapseLabError) else f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc))[-4000:],
    )


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
    directory, task = spec.directory, spec.task.for_seed(spec.seed)
    with lock.holding(directory / rundir.LOCK, f"run directory {directory}"), signals.terminate_as_interrupt():
        shared = spec.share_generation0 and task.step_budget is not None
        step = GenerationStep(task, _handle(spec), spec.seed, directory, spec.hook_timeout,
                              Generation0Store(spec.root, spec.identity, task) if shared else None)
        store = RunStore(directory, task, spec.checkpoint_seconds)
        manifest = store.open(spec.identity, _manifest_identity(spec), sources.task_source_sha256(type(spec.task)),
                              spec.generations, spec.command)
        started = time.perf_counter()
        total, done = spec.generations + 1, len(store.records)
        bar = tqdm(total=total, initial=min(done, total), desc=f"{spec.task.name} / {spec.strategy.name} / seed {spec.seed}",
                   unit="gen", disable=not (progress and sys.stderr.isatty()), leave=False, file=sys.stderr)
        try:
            real = task.real_pool().sealed()
            step.resume(store.restore(real))
            for g in range(done, total):
                generation = step.zero(real) if g == 0 else step.next(g, real, store.records)
                store.add(generation.record, generation.model, generation.kept, generation.model_on_disk)
                bar.update(1)
                for listener in listeners:
                    listener(directory, manifest, generation.record)
                store.checkpoint(force=g == 0 or g == total - 1)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            with contextlib.suppress(Exception):  # keep what was computed; the original error matters more
                store.checkpoint(force=True)
            with contextlib.suppress(Exception):
                store.finish("interrupted" if interrupted else "failed", _error(exc, store.durable), time.perf_counter() - started)
            raise
        finally:
            bar.close()
        store.finish("complete", None, time.perf_counter() - started)
    return rundir.load_run(directory)
