"""One generation of the protocol, computed (made durable by :mod:`collapselab.engine.run_store`):

    generation 0:  M_0 = fit(real)                         (or the seed's shared M_0)
    generation g:  S_g = curate(sample(M_{g-1}, sample_size, sampling_options))
                   M_g = fit(training_pool(ctx_g), fit_options(ctx_g))
    both:          record evaluate(M_g), composition, compute, seconds, artifacts

The strategy's hooks run in its own process (:mod:`collapselab.engine.sandbox`); every answer is
checked (:mod:`collapselab.engine.guard`): pools hold only items the loop produced
(:class:`~collapselab.engine.provenance.Ledger`), the real pool stays unchanged, options stay
within the task's. Each (generation, phase) draws from its own seed stream
(:mod:`collapselab.engine.seeding`), so a generation computes the same numbers whether the run
went straight through or resumed before it.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.contracts.pool import REAL, Pool
from collapselab.contracts.strategy import TaskHooks
from collapselab.contracts.task import Task
from collapselab.engine import guard, rundir, sandbox, seeding
from collapselab.engine.generation0 import Generation0Store
from collapselab.engine.provenance import Ledger
from collapselab.engine.run_store import Restored, write_model
from collapselab.engine.sandbox import StrategyHandle
from collapselab.errors import PluginError
from collapselab.formats import records
from collapselab.formats.records import Composition, Compute, Record

HOOK_NAMES = tuple(f.name for f in dataclasses.fields(TaskHooks))


@dataclass(frozen=True)
class Generation:
    """A computed generation: its record, its model M_g, the synthetic pool S_g it keeps (``None`` at
    generation 0) and whether M_g's file is already in the run directory."""

    record: Record
    model: Any
    kept: Pool | None
    model_on_disk: bool


def composition(pool: Pool, fresh_real: int) -> Composition:
    """What a training pool held, as recorded."""
    counts = pool.origin_counts()
    return Composition(real=counts.get(REAL, 0), synthetic={str(g): n for g, n in counts.items() if g != REAL},
                       total=len(pool), fresh_real=fresh_real, weighted=pool.weight is not None)


def _serve_hook(hooks: TaskHooks, strategy: str, hook: str, args: list[Any]) -> Any:
    """Call the task hook ``hook`` for the strategy's process, with its arguments checked first."""
    fn = getattr(hooks, hook, None) if hook in HOOK_NAMES else None
    if fn is None:
        raise PluginError(f"strategy {strategy!r} called the task hook {hook!r}, which is not offered here",
                          plugin=strategy)
    expected = (int,) if hook == "fresh_real" else (Pool, float) if hook in ("verify", "correct") else (Pool,)
    if len(args) != len(expected) or not all(
            isinstance(a, Pool) if kind is Pool else isinstance(a, int | float) and not isinstance(a, bool)
            for a, kind in zip(args, expected)):
        raise PluginError(f"strategy {strategy!r} called the task hook {hook!r} with arguments of the wrong kind",
                          plugin=strategy)
    return fn(*args)


class GenerationStep:
    """The protocol's state between generations of one run: the strategy's process, S_1..S_g, M_g,
    the real items drawn beyond the real pool, and the provenance of every item a strategy may return."""

    def __init__(self, task: Task, strategy: StrategyHandle, seed: int, run_dir: Path,
                 hook_timeout: float | None, generation0: Generation0Store | None) -> None:
        sandbox.check_task(strategy, task)
        self.task, self.strategy, self.seed, self.dir = task, strategy, seed, run_dir
        self.name = strategy.name
        self.hook_timeout = hook_timeout
        self.generation0 = generation0  # the seed's shared M_0 (None: fit it in this run)
        self.process = sandbox.StrategyProcess.shared(strategy.location, strategy.params, strategy.source_sha256)
        self.synthetic: list[Pool] = []
        self.fresh_real = 0
        self.model: Any = None
        self.corrected: set[int] = set()  # synthetic origins the task's expert changed this generation
        self.pools_shared = False  # the strategy's template holds this run's pools
        self.ledger: Ledger | None = None  # provenance of the items strategies may return, built once per run

    def resume(self, restored: Restored | None) -> None:
        """Continue after the generations a stopped run left on disk."""
        if restored is not None:
            self.synthetic, self.fresh_real, self.model = list(restored.synthetic), restored.fresh_real, restored.model

    # --------------------------------------------------------------- generation 0
    def zero(self, real: Pool) -> Generation:
        """M_0, from the seed's shared store when there is one, else fitted (and stored there)."""
        seconds = dict.fromkeys(records.PHASE_SECONDS, 0.0)
        if self.generation0 is None:
            return self._fit_and_record(0, real, dict(self.task.fit_options), None, 0, seconds, [])
        store = self.generation0
        with store.locked():
            stored = store.load()
            if stored is None:
                fitted = self._fit_and_record(0, real, dict(self.task.fit_options), None, 0, seconds, [])
                record = fitted.record
                store.save(record, lambda path: write_model(self.task, fitted.model, path), self.dir, record.artifacts)
            else:
                record = stored.model_copy(update={"shared": True})
            store.copy_into(self.dir, record.artifacts)
        self.model = self.task.load_model(rundir.model_path(self.dir, 0))  # the same object whether fitted or reused
        return Generation(record, self.model, None, model_on_disk=True)

    # --------------------------------------------------------------- generation g >= 1
    def next(self, g: int, real: Pool, history: Sequence[Record]) -> Generation:
        """S_g from M_{g-1} through the strategy, then M_g fitted on the strategy's training pool."""
        seconds = dict.fromkeys(records.PHASE_SECONDS, 0.0)
        pool, options, sampling, samples = self._synthetic(g, real, seconds)
        return self._fit_and_record(g, pool, options, sampling, samples, seconds, history)

    def _hooks(self, generation: int, ledger: Ledger, phase_counter: Iterator[int]) -> TaskHooks:
        task, seed, offered = self.task, self.seed, self.task.hooks()

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
        task, seed = self.task, self.seed
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
            raise PluginError(f"strategy {self.name!r} named an unknown pool {name!r}", plugin=self.name)
        return resolve

    def _synthetic(self, g: int, real: Pool, seconds: dict[str, float]) -> tuple[Pool, dict[str, Any], dict[str, Any], int]:
        """S_g and the training pool of generation g; returns (pool, fit options, sampling options, samples drawn)."""
        task, name, timeout = self.task, self.name, self.hook_timeout
        if self.ledger is None:  # once per run (after a resume: over the restored pools)
            self.ledger = Ledger(real)
            for h, kept in enumerate(self.synthetic, start=1):
                self.ledger.add(h, kept, keep=True)
        ledger = self.ledger
        hooks = self._hooks(g, ledger, itertools.count())
        self._share_pools(real)
        drawn: list[Pool] = []
        with self.process.child(self._job(g, real, hooks), name, g) as child:
            child.serve = lambda hook, args: _serve_hook(hooks, name, hook, args)
            child.resolve = self._resolve(real, drawn)
            n = guard.check_sample_size(child.result("sample_size", timeout), f"{name}.sample_size()", task.item_bytes())
            sampling = guard.check_options(child.result("sampling_options", timeout), f"{name}.sampling_options()",
                                           task.sampling_options, "sampling")
            start = time.perf_counter()
            samples = task.sample(self.model, n, seeding.stream(self.seed, g, "sample"), sampling).with_origin(g).sealed()
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

    def _fit_and_record(self, g: int, pool: Pool, options: dict[str, Any], sampling: dict[str, Any] | None,
                        samples: int, seconds: dict[str, float], history: Sequence[Record]) -> Generation:
        """M_g = fit(pool, options), evaluated, with its record and artifacts."""
        task, seed = self.task, self.seed
        start = time.perf_counter()
        fitted = task.fit(pool, options, seeding.stream(seed, g, "fit"))
        seconds["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics = guard.check_metrics(task.evaluate(fitted.model), task.name, g, task.metric_bounds)
        seconds["evaluate"] = time.perf_counter() - start
        record = Record(generation=g, metrics=metrics, composition=composition(pool, self.fresh_real),
                        compute=Compute.model_validate({**fitted.compute.as_dict(), "samples": samples}), seconds=seconds,
                        fit_options=options, sampling_options=sampling or {}, corrected=sorted(self.corrected))
        self.corrected.clear()
        # the task's theory reads the records as their files hold them (its plugin interface is JSON)
        theory = task.theory([records.as_json(r) for r in (*history, record)])
        record.metrics.update(guard.check_theory(theory, task.name, g))
        start = time.perf_counter()
        artifacts = self.dir / rundir.ARTIFACTS
        artifacts.mkdir(exist_ok=True)
        names = task.write_artifacts(fitted.model, g, artifacts, seeding.stream(seed, g, "artifacts"))
        record.seconds["artifacts"] = time.perf_counter() - start
        record.artifacts = [f"{rundir.ARTIFACTS}/{n}" for n in names]
        self.model = fitted.model
        return Generation(record, fitted.model, self.synthetic[-1] if g > 0 else None, model_on_disk=False)
