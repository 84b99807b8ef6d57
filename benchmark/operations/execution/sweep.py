"""``collapselab sweep``: run a grid of tasks x strategies x seeds, one job per run directory.

The grid is planned here (:func:`plan`; strategy specs may hold parameter grids,
:mod:`collapselab.operations.execution.grid`), then its jobs run through a launcher
(:mod:`collapselab.operations.execution.launchers`: local processes by default, submitit's local
executor, or a Slurm array). Whatever the launcher, each job is a worker process limited to
its share of the CPU cores through ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` (torch and NumPy's BLAS read them at start-up), so ``--jobs 2`` on
two cores runs two single-threaded runs instead of four threads fighting over two cores.
Complete runs are skipped, unfinished ones resume where they stopped (the loop's atomic run
directories), and a failed run does not stop the others: the sweep reports every failure at
the end and exits non-zero. A run that another process holds (a second sweep on the same
``--out``) is waited for, then counted as complete or resumed here: never a failure. Each
run's output goes to ``sweep.log`` in its run directory. A SIGTERM or Ctrl-C stops the
sweep's jobs (the local ones; a Slurm array keeps running), and a worker whose sweep is
killed outright ends too.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tqdm.auto import tqdm

from collapselab.contracts import registry
from collapselab.contracts.params import parse_assignment
from collapselab.contracts.task import Task
from collapselab.engine import lock, sandbox
from collapselab.engine import rundir as results
from collapselab.engine.sandbox import StrategyHandle
from collapselab.errors import ConfigError, PluginError
from collapselab.operations.execution import grid
from collapselab.operations.execution.jobs import LOG, Job, failure_reason
from collapselab.operations.execution.launchers import Launcher, LauncherSettings, Running

#: How long stopped jobs may take to record their interruption.
STOP_SECONDS = 60.0


@dataclass
class Outcome:
    """What a sweep did: runs completed, skipped (already complete), failed, queued (submitted and not
    waited for, or still queued from an earlier sweep), not applicable."""

    completed: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    queued: list[Job] = field(default_factory=list)
    not_applicable: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: dict[Job, float] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


def split_list(text: str) -> list[str]:
    """Split on commas outside brackets: ``"mix[a=1,b=2],replace"`` -> ``["mix[a=1,b=2]", "replace"]``."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def names(text: str, kind: str) -> list[str]:
    """``--tasks`` / ``--strategies``: a comma list, or ``all`` (every installed one that imports)."""
    if text.strip() != "all":
        return split_list(text)
    listed, load = {
        "task": (registry.task_names(), registry.task_class),
        "strategy": (registry.strategy_names(), registry.strategy_class),
    }[kind]
    found = []
    for name in listed:
        try:
            load(name)
        except PluginError:
            continue
        found.append(name)
    return found


def inapplicable_reason(task: Task, strategy: StrategyHandle) -> str | None:
    """Why ``strategy`` cannot run on ``task`` (its own check, or fresh data the task lacks), else None."""
    try:
        sandbox.check_task(strategy, task)
    except PluginError as exc:
        return str(exc)
    if strategy.uses_extra_real_data and "fresh_real_pool" not in task.hooks():
        return f"task {task.name!r} has no reserve of fresh real data for {strategy.name!r}"
    return None


def plan(
    tasks: Sequence[str],
    strategies: Sequence[str],
    seeds: Sequence[int] | None,
    preset: str,
    generations: int | None,
    root: Path,
    settings: Sequence[str] = (),
    wandb_project: str | None = None,
) -> tuple[list[Job], list[tuple[str, str, str]]]:
    """The grid's jobs (task-major order) and the (task, strategy, reason) pairs that cannot run.

    ``strategies`` may hold parameter grids (expanded by :func:`grid.expand_all`); ``settings``
    are ``key=value`` task config overrides, each applied to every task that has the key.
    ``seeds`` ``None``: each task's leaderboard seeds (0 .. :attr:`Task.leaderboard_seeds` - 1), the
    seeds every entry must report.
    """
    from collapselab.engine.loop import run_identity

    per_task = task_settings(tasks, preset, settings)
    jobs: list[Job] = []
    not_applicable: list[tuple[str, str, str]] = []
    for task_name in tasks:
        chosen = per_task[task_name]
        task = registry.make_task(task_name, preset, dict(parse_assignment(setting) for setting in chosen))
        count = task.default_generations if generations is None else generations
        task_seeds = range(task.leaderboard_seeds) if seeds is None else seeds
        for spec in grid.expand_all(strategies):
            strategy = sandbox.describe(spec)
            reason = inapplicable_reason(task, strategy)
            if reason is not None:
                not_applicable.append((task_name, spec, reason))
                continue
            for seed in task_seeds:
                identity = run_identity(task, strategy, seed)
                directory = identity.directory(Path(root))
                if str(directory) in {job.directory for job in jobs}:
                    continue  # the same run named twice (e.g. ``mix`` and ``mix[real_fraction=0.5]``)
                jobs.append(Job(task_name, spec, int(seed), preset, count, str(root), str(directory), identity.key(),
                                tuple(chosen), wandb_project))
    return jobs, not_applicable


def task_settings(tasks: Sequence[str], preset: str, settings: Sequence[str]) -> dict[str, list[str]]:
    """Task -> those of the ``key=value`` ``settings`` whose key its configuration has; a key that no
    task of the sweep has is a :class:`ConfigError` (a typo would otherwise change nothing)."""
    keys = {key: setting for setting in settings for key in [parse_assignment(setting)[0]]}
    configs = {task: registry.task_class(task).resolve_config(preset, {}) for task in tasks}
    unused = [setting for key, setting in keys.items() if not any(key in config for config in configs.values())]
    if unused:
        raise ConfigError(f"--set {unused[0]}: no task of this sweep ({', '.join(tasks)}) has the config key "
                          f"{parse_assignment(unused[0])[0]!r}")
    return {task: [setting for key, setting in keys.items() if key in config] for task, config in configs.items()}


def describe(jobs: Sequence[Job], not_applicable: Sequence[tuple[str, str, str]], launcher: Launcher) -> str:
    """The expanded grid, printed before anything runs: its axes, its size and where it runs."""
    tasks = list(dict.fromkeys(job.task for job in jobs))
    strategies = list(dict.fromkeys(job.strategy for job in jobs))
    seeds = list(dict.fromkeys(job.seed for job in jobs))
    per_task = {task: list(dict.fromkeys(job.seed for job in jobs if job.task == task)) for task in tasks}
    same = len({tuple(s) for s in per_task.values()}) <= 1  # one seed list for every task (else, as --seeds leaderboard)
    complete = sum(job.complete() for job in jobs)
    axis = f"{len(seeds)} seed(s)" if same else "each task's seeds"
    lines = [f"grid: {len(tasks)} task(s) x {len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'} x "
             f"{axis} = {len(jobs)} run(s), {complete} already complete"]
    for task in tasks:
        first = next(job for job in jobs if job.task == task)
        settings = f", set {' '.join(first.settings)}" if first.settings else ""
        own = "" if same else f", seeds {', '.join(map(str, per_task[task]))}"
        lines.append(f"  task      {task} (preset {first.preset}, {first.generations} generation(s){settings}{own})")
    lines.extend(f"  strategy  {strategy}" for strategy in strategies)
    if same:
        lines.append(f"  seeds     {', '.join(map(str, seeds))}")
    lines.extend(f"  not applicable: {task} / {strategy}: {reason}" for task, strategy, reason in not_applicable)
    lines.append(f"  launcher  {launcher.describe()}")
    return "\n".join(lines)


class _Terminated(BaseException):
    """SIGTERM reached the sweep: stop its jobs as Ctrl-C would."""


@contextmanager
def _signals_stop() -> Iterator[None]:
    """While the sweep runs (main thread only): SIGTERM raises :class:`_Terminated` and SIGINT
    ``KeyboardInterrupt``, even where SIGINT was ignored (a sweep started in the background of a
    script), so the sweep and the job controllers it starts can always be stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate), signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


class _Runner:
    """Starts the jobs through the launcher, polls them and keeps the progress bar current."""

    def __init__(self, jobs: Sequence[Job], launcher: Launcher, progress: bool) -> None:
        self.launcher = launcher
        self.outcome = Outcome()
        self.pending = [job for job in jobs if not job.complete()]
        self.outcome.skipped = [job for job in jobs if job not in self.pending]
        active = set(launcher.still_active(self.pending))
        self.outcome.queued = [job for job in self.pending if job in active]
        self.pending = [job for job in self.pending if job not in active]
        self.running: dict[Job, tuple[Running, float]] = {}
        self.elsewhere: list[Job] = []  # held by another process (another sweep): waited for
        self.done = {job: job.recorded() for job in jobs}
        self.bar = tqdm(
            total=sum(job.generations + 1 for job in jobs),
            initial=sum(min(self.done[j], j.generations + 1) for j in jobs),
            unit="gen",
            desc="sweep",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,
        )

    def held_elsewhere(self, job: Job) -> bool:
        """Whether another process holds ``job``'s run directory; if so the job waits for it."""
        if not lock.held(job.path / results.LOCK):
            return False
        self.elsewhere.append(job)
        tqdm.write(f"waiting {job.label}: another process is running it", file=sys.stderr)
        return True

    def check_elsewhere(self) -> None:
        """Jobs another process released: complete (counted as such) or to run here (they resume)."""
        for job in list(self.elsewhere):
            self.done[job] = job.recorded()
            if not lock.held(job.path / results.LOCK):
                self.elsewhere.remove(job)
                (self.outcome.skipped if job.complete() else self.pending).append(job)

    def launch(self) -> None:
        free = self.launcher.capacity - len(self.running)
        batch: list[Job] = []
        while self.pending and len(batch) < free:
            job = self.pending.pop(0)
            if not self.held_elsewhere(job):
                batch.append(job)
        if not batch:
            return
        for job, running in zip(batch, self.launcher.start(batch)):
            self.running[job] = (running, time.perf_counter())

    def collect(self) -> None:
        for job, (running, started) in list(self.running.items()):
            self.done[job] = job.recorded()
            end = running.poll()
            if end is None:
                continue
            del self.running[job]
            self.outcome.seconds[job] = time.perf_counter() - started
            if end.status == 0 and job.complete():
                self.outcome.completed.append(job)
                curve = results.load_run(job.path).curve()
                where = job.device() or "?"
                if running.visible_gpus is not None:
                    where += f", CUDA_VISIBLE_DEVICES={running.visible_gpus}"
                tqdm.write(f"done    {job.label}: L_0 {curve[0]:.4g} -> L_G {curve[-1]:.4g} "
                           f"({self.outcome.seconds[job]:.1f} s, {where})", file=sys.stderr)
            elif self.held_elsewhere(job):  # another process took it between launch and start
                continue
            elif job.complete():  # ... and has completed it meanwhile
                self.outcome.skipped.append(job)
            else:
                reason = failure_reason(job, end.status, end.detail)
                self.outcome.failed.append((job, reason))
                tqdm.write(f"FAILED  {job.label}: {reason}", file=sys.stderr)
        self.check_elsewhere()
        self.bar.n = sum(min(self.done[j], j.generations + 1) for j in self.done)
        self.bar.set_postfix_str(
            f"runs: {len(self.outcome.completed) + len(self.outcome.skipped)}/{len(self.done)} done, "
            f"{len(self.running)} running, {len(self.elsewhere)} elsewhere, {len(self.outcome.failed)} failed",
            refresh=False,
        )
        self.bar.update(0)

    def stop(self) -> None:
        """After Ctrl-C or SIGTERM: stop the running jobs (or leave them to their cluster)."""
        self.outcome.interrupted = True
        if not self.launcher.stops_on_interrupt:
            self.outcome.queued.extend(self.running)
            self.running.clear()
            return
        for running, _ in self.running.values():
            running.stop()
        for running, _ in self.running.values():
            running.wait(STOP_SECONDS)

    def run(self) -> Outcome:
        try:
            with _signals_stop():
                while self.pending or self.running or self.elsewhere:
                    self.launch()
                    if not self.launcher.waits:
                        self.outcome.queued.extend([*self.running, *self.elsewhere])
                        self.running.clear()
                        break
                    time.sleep(self.launcher.poll_seconds)
                    self.collect()
        except (KeyboardInterrupt, _Terminated):
            self.stop()
        finally:
            self.bar.close()
        return self.outcome


def run_jobs(jobs: Sequence[Job], launcher: Launcher, progress: bool = True) -> Outcome:
    """Run ``jobs`` (skipping complete ones) through ``launcher``."""
    return _Runner(jobs, launcher, progress).run()


def sweep(
    tasks: Sequence[str],
    strategies: Sequence[str],
    seeds: Sequence[int] | None,
    preset: str,
    generations: int | None,
    root: Path,
    parallel: int | None = None,
    progress: bool = True,
    settings: Sequence[str] = (),
    launcher: LauncherSettings | None = None,
) -> tuple[list[Job], Outcome]:
    """Plan the grid and run it (default: ``parallel`` local processes); the outcome also lists the pairs that cannot run."""
    jobs, not_applicable = plan(tasks, strategies, seeds, preset, generations, root, settings)
    chosen = launcher or LauncherSettings(parallel=parallel)
    outcome = run_jobs(jobs, chosen.build(root), progress)
    outcome.not_applicable = not_applicable
    return jobs, outcome


def summary(jobs: Sequence[Job], outcome: Outcome) -> str:
    """A table per (task, strategy) with the device its runs recorded, and the list of failures with their logs."""
    from tabulate import tabulate

    failed = {job: reason for job, reason in outcome.failed}
    rows: dict[tuple[str, str], list[int | float]] = {}
    devices: dict[tuple[str, str], dict[str, None]] = {}
    for job in jobs:
        row = rows.setdefault((job.task, job.strategy), [0, 0, 0, 0, 0.0])
        row[0] += job in outcome.completed
        row[1] += job in outcome.skipped
        row[2] += job in failed
        row[3] += job in outcome.queued
        row[4] += outcome.seconds.get(job, 0.0)
        device = job.device()
        if device is not None:
            devices.setdefault((job.task, job.strategy), {})[device] = None
    queued = bool(outcome.queued)
    table = []
    for key, (ran, skipped, bad, waiting, seconds) in rows.items():
        device = ", ".join(devices.get(key, {})) or "-"
        table.append([*key, ran, skipped, bad, *([waiting] if queued else []), device, f"{seconds:.1f}"])
    headers = ["task", "strategy", "ran", "already complete", "failed", *(["queued"] if queued else []), "device", "wall s"]
    lines = [tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)]
    for task, strategy, reason in outcome.not_applicable:
        lines.append(f"not applicable: {task} / {strategy}: {reason}")
    if outcome.failed:
        lines.append(f"\n{len(outcome.failed)} run(s) failed (re-run the same command to retry them):")
        lines.extend(f"  {job.label}: {reason}\n    log: {job.path / LOG}" for job, reason in outcome.failed)
    if outcome.queued:
        lines.append(f"\n{len(outcome.queued)} run(s) queued or running on the cluster; re-run the same command "
                     "once they end to see their results and retry any that failed")
    if outcome.interrupted:
        lines.append("\ninterrupted: finished generations are kept; re-run the same command to resume")
    return "\n".join(lines)
