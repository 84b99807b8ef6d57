"""The contract suite: what every task and every strategy must do, at the smoke preset.

One generic suite over plugins (``collapselab check SPEC`` runs it on one task or strategy;
tests/test_contract.py runs it on every installed one). A task's own checks: a read-only
description without data, fits that spend exactly the example budget, save/load round trips
and deterministic evaluation, a validation loss read without the test split, the fresh-real
reserve, declared sampling options. With each partner (strategies for a task, tasks for a
strategy): the run completes and resumes identically after an interruption, or the strategy
refuses the task with a clear error.

A check returns when it passes, raises :class:`ContractFailure` when the plugin breaks the
contract and :class:`NotApplicable` when it does not apply; :func:`run_check` turns any of these
(and any other exception of plugin code) into a :class:`CheckResult`.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.contracts.pool import REAL
from collapselab.contracts.task import Task, TaskDescription
from collapselab.engine import rundir, sandbox
from collapselab.engine.loop import RunSpec, execute
from collapselab.errors import CollapseLabError, PluginError
from collapselab.formats.records import Manifest, Record
from collapselab.operations.execution.sweep import inapplicable_reason

PRESET = "smoke"
GENERATIONS = 2
HOOKS = {"verify", "correct", "reward", "features", "fresh_real_pool"}


class ContractFailure(CollapseLabError):
    """A plugin breaks the contract (the message says how)."""


class NotApplicable(Exception):
    """The check does not apply to this plugin (the message says why)."""


def require(condition: Any, message: str) -> None:
    """Raise :class:`ContractFailure` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ContractFailure(message)


def smoke_task(task: str) -> Task:
    return registry.make_task(task, PRESET)


# ------------------------------------------------------------------ task checks
def description_is_read_only(task: str) -> None:
    description = smoke_task(task).describe()
    require(isinstance(description, TaskDescription), f"describe() returned {type(description).__name__}, not a TaskDescription")
    try:
        description.config["generations"] = 99  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise ContractFailure("the description's config can be written to")
    require(set(description.hooks) <= HOOKS, f"unknown hooks {sorted(set(description.hooks) - HOOKS)}")


def fit_spends_the_budget(task: str) -> None:
    """A fit spends exactly the budget of examples on a pool smaller than, equal to and larger than the
    budget; asking for more through the fit options spends more, and says so."""
    made = smoke_task(task)
    budget = made.example_budget
    if budget is None or made.describe().example_budget != budget:
        raise ContractFailure("the task declares no example budget")
    real = made.real_pool()
    for pool in (real.subset(np.arange(3)), real, type(real).concat([real, real, real])):
        fitted = made.fit(pool, made.fit_options, np.random.default_rng(0))
        require(fitted.compute.examples == budget,
                f"a fit on {len(pool)} examples spent {fitted.compute.examples} examples, not the budget {budget}")
        require(fitted.compute.steps == (made.step_budget or 0),
                f"a fit spent {fitted.compute.steps} steps, not the budget {made.step_budget or 0}")
    knob = "steps" if made.step_budget is not None else "examples"
    require(knob in made.fit_options, f"the fit options have no {knob!r}")
    more = made.fit(real, {**made.fit_options, knob: 2 * made.fit_options[knob]}, np.random.default_rng(0))
    require(more.compute.examples == 2 * budget, f"twice the {knob} spent {more.compute.examples} examples, not {2 * budget}")


def round_trip_and_deterministic_evaluation(task: str) -> None:
    made = smoke_task(task)
    model = made.fit(made.real_pool(), made.fit_options, np.random.default_rng(1)).model
    first = made.evaluate(model)
    require(first == made.evaluate(model), "evaluating the same model twice gave different metrics")
    with tempfile.TemporaryDirectory(prefix="collapselab-check-") as folder:
        made.save_model(model, Path(folder) / "model")
        require(made.evaluate(made.load_model(Path(folder) / "model")) == first, "a saved and loaded model evaluates differently")
    again = made.fit(made.real_pool(), made.fit_options, np.random.default_rng(1)).model
    require(made.evaluate(again) == first, "two fits with the same seed evaluate differently")


def validation_without_the_test_split(task: str) -> None:
    """``validate`` gives a finite, deterministic loss with ``evaluate`` (the only reader of the test split) locked."""
    made = smoke_task(task)
    model = made.fit(made.real_pool(), made.fit_options, np.random.default_rng(1)).model
    published = made.evaluate(model)

    def locked(model: Any) -> dict[str, float]:
        raise ContractFailure("validate() went through evaluate(), the test split's reader")

    made.evaluate = locked  # type: ignore[method-assign]
    first = made.validate(model)
    require(np.isfinite(first["loss"]) and first == made.validate(model), "the validation loss is not finite and deterministic")
    require(first["loss"] != published["loss"], "the validation loss equals the test loss: is validate() reading the test split?")


def fresh_real_data_from_the_reserve(task: str) -> None:
    made = smoke_task(task)
    if "fresh_real_pool" not in made.hooks():
        raise NotApplicable("the task keeps no reserve")
    real = made.real_pool()
    fresh = made.fresh_real_pool(5, np.random.default_rng(0))
    require(len(fresh) == 5 and set(fresh.origin_counts()) == {REAL}, "fresh_real_pool(5) did not give 5 real items")
    key = np.random.default_rng(0).integers(0, 2**63, size=1 << 16, dtype=np.uint64)
    require(not np.isin(fresh.row_digests(key), real.row_digests(key)).any(), "fresh real items repeat items of the real pool")


def sampling_options_used(task: str) -> None:
    made = smoke_task(task)
    model = made.fit(made.real_pool(), made.fit_options, np.random.default_rng(0)).model
    samples = made.sample(model, 4, np.random.default_rng(0), made.sampling_options)
    require(len(samples) == 4, f"sample(model, 4) gave {len(samples)} items")
    require(samples.keys == made.real_pool().keys, f"samples carry the fields {samples.keys}, the real pool {made.real_pool().keys}")


TASK_CHECKS: dict[str, Callable[[str], None]] = {
    "description is read-only and holds no data": description_is_read_only,
    "fit spends exactly the budget whatever the pool size": fit_spends_the_budget,
    "model round trip and deterministic evaluation": round_trip_and_deterministic_evaluation,
    "validation is read without the test split": validation_without_the_test_split,
    "fresh real data come from the reserve": fresh_real_data_from_the_reserve,
    "sampling options are declared and used": sampling_options_used,
}


# ------------------------------------------------------------------ a task with a strategy
class StopAfter:
    """A loop listener that interrupts the run (like Ctrl-C) once generation ``after`` is recorded."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, run_dir: Path, manifest: Manifest, record: Record) -> None:
        if record.generation == self.after:
            raise KeyboardInterrupt


def _spec(task: str, strategy: str, root: Path) -> RunSpec:
    return RunSpec(smoke_task(task), sandbox.describe(strategy), 0, GENERATIONS, root, strategy_spec=strategy,
                   command=["collapselab", "check"], checkpoint_seconds=0.0)


def _curves(run: rundir.Run) -> tuple[list[Any], list[Any]]:
    return [record.metrics for record in run.records], [record.compute for record in run.records]


def completes_and_resumes(task: str, strategy: str, workdir: Path) -> None:
    """The run completes with finite metrics and its artifacts, and a run interrupted after generation 1
    resumes to the same numbers; a strategy that cannot run on the task refuses it with a clear error.
    ``workdir`` may be shared by the checks of other strategies: their runs share generation 0 there."""
    made = smoke_task(task)
    handle = sandbox.describe(strategy)
    reason = inapplicable_reason(made, handle)
    if reason is not None:
        require(handle.name in reason or made.name in reason or "reserve" in reason,
                f"the refusal names neither the strategy nor the task: {reason}")
        raise NotApplicable(reason)
    straight = execute(_spec(task, strategy, workdir / "straight"), progress=False)
    require(straight.complete and len(straight.records) == GENERATIONS + 1, f"the run did not record {GENERATIONS + 1} generations")
    for record in straight.records:
        require(all(np.isfinite(v) for v in record.metrics.values()), f"generation {record.generation} has a non-finite metric")
        for name in record.artifacts:
            require((straight.path / name).is_file(), f"the artifact {name} is missing")
    interrupted = _spec(task, strategy, workdir / "cut")
    with contextlib.suppress(KeyboardInterrupt):
        execute(interrupted, (StopAfter(1),), progress=False)
    cut = rundir.load_run(interrupted.directory)
    require(cut.manifest.status == "interrupted" and len(cut.records) == 2, "the interrupted run did not keep generations 0 and 1")
    resumed = execute(interrupted, progress=False)
    require(_curves(resumed) == _curves(straight), "the resumed run's metrics or compute differ from the uninterrupted run's")


# ------------------------------------------------------------------ running the suite
@dataclass(frozen=True)
class Case:
    """One check of the suite on one plugin (and a partner)."""

    title: str
    call: Callable[[Path], None]


@dataclass(frozen=True)
class CheckResult:
    title: str
    status: str  # PASS, FAIL or SKIP
    detail: str = ""


def task_cases(task: str, strategies: Sequence[str]) -> list[Case]:
    """The suite for the task ``task``: its own checks, then a run with each of ``strategies``."""
    own = [Case(f"{title} ({task})", functools.partial(_in_memory, check, task)) for title, check in TASK_CHECKS.items()]
    return own + [Case(f"completes and resumes identically ({task} / {strategy})",
                       functools.partial(completes_and_resumes, task, strategy)) for strategy in strategies]


def _in_memory(check: Callable[[str], None], task: str, workdir: Path) -> None:
    check(task)


def strategy_cases(strategy: str, tasks: Sequence[str]) -> list[Case]:
    """The suite for the strategy ``strategy``: a run on each of ``tasks``."""
    return [Case(f"completes and resumes identically ({task} / {strategy})",
                 functools.partial(completes_and_resumes, task, strategy)) for task in tasks]


KINDS = ("task", "strategy")


def spec_kind(spec: str) -> str:
    """Whether ``spec`` names a task or a strategy, decided without running plugin code.

    An installed or registered name is looked up. A ``file.py:Class`` is a task when ``Class``
    derives, through classes of that file, from a class whose name ends in ``Task`` (``Task``,
    ``TorchTask``...), else a strategy: a strategy file runs only in its own process, so a file
    that is neither is refused there.
    """
    name = spec.split("[", 1)[0]
    if registry.is_file_spec(name):
        path, _, class_name = name.rpartition(":")
        if not Path(path).is_file():
            raise PluginError(f"{spec!r}: no such file {path}")
        return _file_kind(Path(path), class_name)
    if name in registry.task_names():
        return "task"
    if name in registry.strategy_names():
        return "strategy"
    raise PluginError(f"{spec!r} is neither a task nor a strategy; known tasks: {', '.join(registry.task_names())}; "
                      f"known strategies: {', '.join(registry.strategy_names())}")


def _file_kind(path: Path, class_name: str) -> str:
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return "strategy"  # its own process reports the problem without this process running the file
    bases = {node.name: [_base_name(base) for base in node.bases] for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    seen, todo = set(), [class_name]
    while todo:
        for base in bases.get(todo.pop(), []):
            if base.endswith("Task"):
                return "task"
            if base not in seen:
                seen.add(base)
                todo.append(base)
    return "strategy"


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def cases_for(spec: str, kind: str | None = None, partners: Sequence[str] | None = None) -> tuple[str, list[Case]]:
    """The kind of ``spec`` and its suite, with ``partners`` (default: every installed strategy for a task,
    every installed task for a strategy). The plugin is loaded first: one that cannot load is a
    :class:`PluginError`, not a list of failed checks."""
    kind = kind or spec_kind(spec)
    partners = None if partners is None else list(dict.fromkeys(partners))  # each pair once: the runs share a folder
    if kind == "task":
        registry.make_task(spec, PRESET)
        return kind, task_cases(spec, registry.strategy_names() if partners is None else partners)
    sandbox.describe(spec)
    return kind, strategy_cases(spec, registry.task_names() if partners is None else partners)


def run_check(case: Case, folder: Path) -> CheckResult:
    """Run one case in ``folder``: PASS, FAIL (with the reason in one line) or SKIP."""
    try:
        case.call(folder)
    except NotApplicable as skipped:
        return CheckResult(case.title, "SKIP", str(skipped))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # plugin code may raise anything: each is this check's failure
        detail = str(exc) if isinstance(exc, CollapseLabError) else f"{type(exc).__name__}: {exc}"
        return CheckResult(case.title, "FAIL", " ".join(detail.split()))
    return CheckResult(case.title, "PASS")


def run_suite(cases: Sequence[Case]) -> Iterator[CheckResult]:
    """The result of each case, as it finishes; the cases run in one temporary folder (each run has its
    own directory there, and the runs of one task share its generation 0)."""
    with tempfile.TemporaryDirectory(prefix="collapselab-check-") as folder:
        for case in cases:
            yield run_check(case, Path(folder))
