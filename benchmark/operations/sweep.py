"""``collapselab sweep``: run a grid of tasks x strategies x seeds in parallel processes.

Each run is its own process (:func:`worker_command`), limited to a fair share of
the CPU cores through ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``
(torch and NumPy's BLAS read them at start-up), so ``--jobs 2`` on two cores runs two
single-threaded runs instead of four threads fighting over two cores. Complete runs are
skipped, unfinished ones resume where they stopped (the loop's atomic run directories), and a
failed run does not stop the others: the sweep reports every failure at the end and exits
non-zero. Each run's output goes to ``sweep.log`` in its run directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from collapselab.contracts import registry
from collapselab.contracts.strategy import Strategy
from collapselab.contracts.task import Task
from collapselab.engine import rundir as results
from collapselab.engine.identity import RunIdentity
from collapselab.errors import PluginError

LOG = "sweep.log"
POLL_SECONDS = 0.25
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    """One run of the grid (JSON-serialisable: it is handed to the child process); ``identity`` is
    the run's :meth:`RunIdentity.key`, so a directory holding another experiment is never skipped."""

    task: str
    strategy: str
    seed: int
    preset: str
    generations: int
    root: str
    directory: str
    identity: str

    @property
    def label(self) -> str:
        return f"{self.task} / {self.strategy} / seed {self.seed}"

    @property
    def path(self) -> Path:
        return Path(self.directory)

    def command(self) -> list[str]:
        """The ``collapselab run`` command that makes the same run (recorded in its manifest)."""
        return ["collapselab", "run", "--task", self.task, "--strategy", self.strategy, "--preset", self.preset,
                "--seeds", str(self.seed), "--generations", str(self.generations), "--out", self.root]

    def recorded(self) -> int:
        """Generations recorded so far (lines of ``generations.jsonl``)."""
        try:
            with open(self.path / results.GENERATIONS, "rb") as handle:
                return sum(1 for line in handle if line.strip())
        except OSError:
            return 0

    def complete(self) -> bool:
        """Finished, with the same task version, configuration, strategy parameters and code as planned."""
        try:
            manifest = results.read_manifest(self.path)
        except (OSError, ValueError):
            return False
        found = RunIdentity.from_manifest(manifest).key()
        done = manifest["status"] == "complete" and self.recorded() >= self.generations + 1
        return done and found == self.identity


@dataclass
class Outcome:
    """What a sweep did: runs completed, skipped (already complete), failed, not applicable."""

    completed: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
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


def inapplicable_reason(task: Task, strategy: Strategy) -> str | None:
    """Why ``strategy`` cannot run on ``task`` (its own check, or fresh data the task lacks), else None."""
    try:
        strategy.check_task(task.describe())
    except PluginError as exc:
        return str(exc)
    if strategy.uses_extra_real_data and "fresh_real_pool" not in task.hooks():
        return f"task {task.name!r} has no reserve of fresh real data for {strategy.name!r}"
    return None


def plan(
    tasks: Sequence[str],
    strategies: Sequence[str],
    seeds: Sequence[int],
    preset: str,
    generations: int | None,
    root: Path,
) -> tuple[list[Job], list[tuple[str, str, str]]]:
    """The grid's jobs (task-major order) and the (task, strategy, reason) pairs that cannot run."""
    from collapselab.engine.loop import run_identity

    jobs, not_applicable = [], []
    for task_name in tasks:
        task = registry.make_task(task_name, preset)
        count = task.default_generations if generations is None else generations
        for spec in strategies:
            strategy = registry.make_strategy(spec)
            reason = inapplicable_reason(task, strategy)
            if reason is not None:
                not_applicable.append((task_name, spec, reason))
                continue
            for seed in seeds:
                identity = run_identity(task, strategy, seed)
                directory = identity.directory(Path(root))
                if str(directory) in {job.directory for job in jobs}:
                    continue  # the same run named twice (e.g. ``mix`` and ``mix[real_fraction=0.5]``)
                jobs.append(Job(task_name, spec, int(seed), preset, count, str(root), str(directory), identity.key()))
    return jobs, not_applicable


def worker_command(job: Job) -> list[str]:
    """The child process of one job. ``-P`` keeps the working folder off ``sys.path``, so a file
    there (``collapselab.py``, ``numpy.py``...) cannot shadow the packages the worker imports."""
    return [sys.executable, "-P", "-m", "collapselab.operations.worker", json.dumps(asdict(job))]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def child_environment(parallel: int, threads: int | None = None) -> dict[str, str]:
    """The parent's environment with each thread pool capped at ``threads`` (default: this job's share of the cores)."""
    count = threads or max(1, available_cpus() // max(1, parallel))
    return {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(count)), "PYTHONSAFEPATH": "1"}


def _failure_reason(job: Job, returncode: int) -> str:
    try:
        manifest = results.read_manifest(job.path)
        if manifest["status"] == "failed" and manifest.get("error"):
            error = manifest["error"]
            return f"generation {error.get('generation')}: {error.get('message')}"
    except (OSError, ValueError):
        pass
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
    try:
        lines = [line for line in (job.path / LOG).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else f"exit status {returncode}"


class _Runner:
    """Launches the child processes, polls them and keeps the progress bar current."""

    def __init__(self, jobs: Sequence[Job], parallel: int, progress: bool, threads: int | None) -> None:
        self.parallel = max(1, parallel)
        self.env = child_environment(self.parallel, threads)
        self.outcome = Outcome()
        self.pending = [job for job in jobs if not job.complete()]
        self.outcome.skipped = [job for job in jobs if job not in self.pending]
        self.running: dict[Job, tuple[subprocess.Popen[bytes], float]] = {}
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

    def launch(self, job: Job) -> None:
        job.path.mkdir(parents=True, exist_ok=True)
        with open(job.path / LOG, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {job.label}\n".encode())
            process = subprocess.Popen(
                worker_command(job),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        self.running[job] = (process, time.perf_counter())

    def collect(self) -> None:
        for job, (process, started) in list(self.running.items()):
            self.done[job] = job.recorded()
            if process.poll() is None:
                continue
            del self.running[job]
            self.outcome.seconds[job] = time.perf_counter() - started
            if process.returncode == 0 and job.complete():
                self.outcome.completed.append(job)
                curve = results.load_run(job.path).curve()
                tqdm.write(f"done    {job.label}: L_0 {curve[0]:.4g} -> L_G {curve[-1]:.4g} "
                           f"({self.outcome.seconds[job]:.1f} s)", file=sys.stderr)
            else:
                reason = _failure_reason(job, process.returncode)
                self.outcome.failed.append((job, reason))
                tqdm.write(f"FAILED  {job.label}: {reason}", file=sys.stderr)
        self.bar.n = sum(min(self.done[j], j.generations + 1) for j in self.done)
        self.bar.set_postfix_str(
            f"runs: {len(self.outcome.completed) + len(self.outcome.skipped)}/{len(self.done)} done, "
            f"{len(self.running)} running, {len(self.outcome.failed)} failed",
            refresh=False,
        )
        self.bar.update(0)

    def run(self) -> Outcome:
        try:
            while self.pending or self.running:
                while self.pending and len(self.running) < self.parallel:
                    self.launch(self.pending.pop(0))
                time.sleep(POLL_SECONDS)
                self.collect()
        except KeyboardInterrupt:
            self.outcome.interrupted = True
            for process, _ in self.running.values():
                process.send_signal(signal.SIGINT)
            for process, _ in self.running.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        finally:
            self.bar.close()
        return self.outcome


def run_jobs(jobs: Sequence[Job], parallel: int = 1, progress: bool = True, threads: int | None = None) -> Outcome:
    """Run ``jobs`` (skipping complete ones) with at most ``parallel`` processes at a time,
    each with ``threads`` threads (default: a fair share of the cores)."""
    return _Runner(jobs, parallel, progress, threads).run()


def sweep(
    tasks: Sequence[str],
    strategies: Sequence[str],
    seeds: Sequence[int],
    preset: str,
    generations: int | None,
    root: Path,
    parallel: int = 1,
    progress: bool = True,
) -> tuple[list[Job], Outcome]:
    """Plan the grid and run it; the outcome also lists the pairs that cannot run."""
    jobs, not_applicable = plan(tasks, strategies, seeds, preset, generations, root)
    outcome = run_jobs(jobs, parallel, progress)
    outcome.not_applicable = not_applicable
    return jobs, outcome


def summary(jobs: Sequence[Job], outcome: Outcome) -> str:
    """A table per (task, strategy) and the list of failures with their logs."""
    from tabulate import tabulate

    failed = {job: reason for job, reason in outcome.failed}
    rows: dict[tuple[str, str], list[int | float]] = {}
    for job in jobs:
        row = rows.setdefault((job.task, job.strategy), [0, 0, 0, 0.0])
        row[0] += job in outcome.completed
        row[1] += job in outcome.skipped
        row[2] += job in failed
        row[3] += outcome.seconds.get(job, 0.0)
    table = [[task, strategy, ran, skipped, bad, f"{seconds:.1f}"] for (task, strategy), (ran, skipped, bad, seconds) in rows.items()]
    lines = [tabulate(table, headers=["task", "strategy", "ran", "already complete", "failed", "wall s"],
                      tablefmt="simple", disable_numparse=True)]
    for task, strategy, reason in outcome.not_applicable:
        lines.append(f"not applicable: {task} / {strategy}: {reason}")
    if outcome.failed:
        lines.append(f"\n{len(outcome.failed)} run(s) failed (re-run the same command to retry them):")
        lines.extend(f"  {job.label}: {reason}\n    log: {job.path / LOG}" for job, reason in outcome.failed)
    if outcome.interrupted:
        lines.append("\ninterrupted: finished generations are kept; re-run the same command to resume")
    return "\n".join(lines)
