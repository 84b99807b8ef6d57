"""``collapselab reproduce``: re-run a published entry and compare with its numbers.

For each task the entry's strategy (same name and parameters) is run again at the entry's
preset through the sweep machinery, then the published and the reproduced L_0, the excess
area sum_g (L_g - L_0) the score is made of, L_G and L_G/L_0 are compared as means over seeds
(over the same seeds when the published seeds are re-run) with the scorer's
:func:`collapselab.scoring.scorer.reproduction_tolerance` (from the published seed-to-seed
spread). Re-running the published seeds with the published thread count on a
machine with the same BLAS kernel reproduces them exactly (the loop's seed streams), which the
per-seed check reports; other hardware changes the last bits (and, through training, more), and
varies within the spread.

A submission is data, never code: the strategy is rebuilt from an *installed* strategy of the
entry's name, or from the file the user names with ``--strategy``; the file path recorded in a
submission's manifests is never imported. The published thread count is clamped to the cores
this machine has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.engine import sandbox
from collapselab.engine.rundir import load_run
from collapselab.errors import CollapseLabError, PluginError
from collapselab.operations import submission, sweep
from collapselab.operations.jobs import Job, available_cpus
from collapselab.operations.launchers import LauncherSettings
from collapselab.scoring import scorer
from collapselab.scoring.report import strategy_display


@dataclass(frozen=True)
class Check:
    """One published-vs-reproduced comparison."""

    task: str
    metric: str
    published: list[float]
    reproduced: list[float]
    published_all: list[float] | None = None  # every published seed (default: ``published``): the tolerance's spread

    @property
    def difference(self) -> float:
        return abs(float(np.mean(self.reproduced)) - float(np.mean(self.published)))

    @property
    def tolerance(self) -> float:
        return scorer.reproduction_tolerance(self.published, len(self.reproduced), spread_of=self.published_all)

    @property
    def passed(self) -> bool:
        return self.difference <= self.tolerance


def resolve(entry: str, submissions: Path) -> Path:
    """An entry name (``leaderboard/submissions/<name>.json``) or a path to a submission file."""
    path = Path(entry)
    if path.suffix == ".json" and path.is_file():
        return path
    candidate = Path(submissions) / f"{entry}.json"
    if submission.safe_name(entry) and candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in Path(submissions).glob("*.json"))) or "none"
    raise CollapseLabError(f"no published entry {entry!r} in {submissions} (entries: {known})")


def strategy_spec(entry: Mapping[str, Any], override: str | None) -> str:
    """The spec that rebuilds the entry's strategy with its parameters.

    The code is the strategy installed under the entry's name, or ``override`` (a spec the user
    gives, e.g. ``path/to/file.py:ClassName``). Nothing the submission names is imported: a name
    that is not an installed strategy is refused, with the way to point at its code."""
    strategy = entry["strategy"]
    if override is None:
        if strategy["name"] not in registry.strategy_names():
            raise CollapseLabError(
                f"entry {entry['name']!r} ran strategy {strategy['name']!r}, which is not installed; a submission's "
                "code is never run on its own say-so: point at the code yourself with --strategy path/to/file.py:ClassName"
            )
        base = strategy["name"]
    else:
        base = override
    spec = strategy_display(base, strategy["params"])
    try:
        built = sandbox.describe(spec)
    except PluginError as exc:
        raise CollapseLabError(f"{exc}; point at the strategy's code with --strategy path/to/file.py:ClassName") from None
    if built.params != strategy["params"]:
        raise CollapseLabError(f"{spec} builds parameters {built.params}, the entry has {strategy['params']}")
    return spec


def published_threads(entry: Mapping[str, Any], tasks: Sequence[str]) -> int | None:
    """The thread count the published runs recorded (``OMP_NUM_THREADS``, else torch's), if those that
    recorded one agree.

    Thread counts change floating-point sums, so re-running with the published count is what
    makes the same seeds reproduce bit for bit on the same kind of machine.
    """
    found = set()
    for task in tasks:
        for run in entry["tasks"][task]["runs"]:
            env = run["manifest"]["environment"]
            value = env.get("omp_num_threads") or env.get("torch_threads")
            if value is not None:
                found.add(str(value))
    value = found.pop() if len(found) == 1 else ""
    if not (value.isdigit() and int(value) > 0):
        return None
    return min(int(value), available_cpus())  # a submission cannot ask for 4096 threads


def _seeds_text(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _format(values: Sequence[float]) -> str:
    mean = float(np.mean(values))
    spread = f" ± {np.std(values, ddof=1):.2g}" if len(values) > 1 else ""
    return f"{mean:.6g}{spread} (n={len(values)})"


METRICS = {
    "L_0": lambda c: c[0],
    "area": scorer.excess_area,
    "L_G": lambda c: c[-1],
    "L_G/L_0": lambda c: c[-1] / c[0],
}


def compare(task: str, published: Mapping[int, list[float]], reproduced: Mapping[int, list[float]]) -> list[Check]:
    """L_0, excess area, L_G and L_G/L_0 checks from seed -> loss curve maps. When every reproduced
    seed is a published one, the reproduced mean is compared with the published mean of the
    same seeds (paired: seed-to-seed variation then cancels), the tolerance still coming from
    the spread over every published seed."""
    def column(curves: Mapping[int, list[float]], metric: str) -> list[float]:
        return [float(METRICS[metric](curve)) for _, curve in sorted(curves.items())]

    paired = {seed: published[seed] for seed in reproduced} if set(reproduced) <= set(published) else published
    return [Check(task, m, column(paired, m), column(reproduced, m), column(published, m)) for m in METRICS]


def same_kernel(published_runs: Sequence[Mapping[str, Any]], reproduced_runs: Sequence[Any]) -> bool:
    """Whether both sides recorded the same BLAS kernel and thread settings (then same seeds are bit-identical)."""
    def facts(environment: Mapping[str, Any]) -> tuple:
        return tuple(environment.get(k) for k in ("blas_kernel", "omp_num_threads", "cpu", "torch", "numpy"))

    ours = {facts(run.manifest["environment"]) for run in reproduced_runs}
    theirs = {facts(run["manifest"]["environment"]) for run in published_runs}
    return len(ours | theirs) == 1 and None not in next(iter(ours))


def seed_differences(published: Mapping[int, list[float]], reproduced: Mapping[int, list[float]]) -> dict[int, float]:
    """seed -> max |difference| over generations, for the seeds both have."""
    return {
        seed: float(np.max(np.abs(np.asarray(published[seed]) - np.asarray(reproduced[seed]))))
        for seed in sorted(set(published) & set(reproduced))
        if len(published[seed]) == len(reproduced[seed])
    }


def reproduce(
    entry_path: Path,
    tasks: Sequence[str] | None,
    seeds: Sequence[int] | None,
    out: Path,
    launcher: LauncherSettings | None = None,
    strategy: str | None = None,
    progress: bool = True,
    missing_ok: bool = False,
) -> tuple[str, bool]:
    """Re-run the entry and return the side-by-side report and whether everything passed.

    ``launcher``: where the runs go (default: one local process at a time); a launcher that does
    not wait for its jobs cannot compare. ``missing_ok``: re-run those of ``tasks`` the entry has
    (for ``--all``) instead of refusing.
    """
    from tabulate import tabulate

    entry = submission.read(entry_path)
    chosen = list(tasks or entry["tasks"])
    unknown = sorted(set(chosen) - set(entry["tasks"]))
    if missing_ok:
        chosen = [task for task in chosen if task in entry["tasks"]]
        if not chosen:
            return f"reproduce {entry['name']}: none of {list(tasks or [])} published; nothing to do", True
    elif unknown:
        raise CollapseLabError(f"entry {entry['name']!r} has no task(s) {unknown}; it has {sorted(entry['tasks'])}")
    spec = strategy_spec(entry, strategy)
    threads = published_threads(entry, chosen)
    runner = (launcher or LauncherSettings()).build(out, threads)
    if not runner.waits:
        raise CollapseLabError("reproduce compares the finished runs: set `wait: true` in the launcher config")
    jobs: list[Job] = []
    for task in chosen:
        published_seeds = [run["seed"] for run in entry["tasks"][task]["runs"]]
        planned, not_applicable = sweep.plan([task], [spec], seeds or published_seeds, entry["preset"], None, out)
        if not_applicable:
            raise CollapseLabError(f"{task}: {not_applicable[0][2]}")
        jobs.extend(planned)
    outcome = sweep.run_jobs(jobs, runner, progress)
    share = f"{threads} as published" if threads else "a fair share of the cores"
    lines = [f"reproduce {entry['name']} ({spec}, preset {entry['preset']}): runs in {out}, threads per run: {share}",
             f"launcher {runner.describe()}"]
    if not outcome.ok or outcome.queued:
        lines.append(sweep.summary(jobs, outcome))
        lines.append("FAIL: some runs did not finish")
        return "\n".join(lines), False

    rows, ok = [], True
    installed = sandbox.describe(spec).source_sha256
    for task in chosen:
        section = entry["tasks"][task]
        published = submission.curves(section)
        runs = [load_run(job.path) for job in jobs if job.task == task]
        reproduced = {run.seed: run.curve() for run in runs}
        lines.append(
            f"{task} v{section['version']}: published seeds {_seeds_text(list(published))}, "
            f"reproduced seeds {_seeds_text(list(reproduced))}"
        )
        same = seed_differences(published, reproduced)
        if same:
            identical = sum(1 for d in same.values() if d == 0.0)
            kernel = ("the same BLAS kernel and threads as published" if same_kernel(section["runs"], runs)
                      else "another BLAS kernel, thread count or library version than published")
            lines.append(f"  same seeds: {identical}/{len(same)} curves identical, largest |difference| "
                         f"{max(same.values()):.3g} ({kernel})")
        if runs and runs[0].manifest["task"].get("data", {}) != section["data"]:
            lines.append("  note: the task's data differ from the published runs' (another data source?)")
        if installed != section["runs"][0]["manifest"]["strategy"].get("source_sha256"):
            lines.append("  note: the installed strategy's source differs from the published runs' (source_sha256)")
        for check in compare(task, published, reproduced):
            ok &= check.passed
            rows.append([task, check.metric, _format(check.published), _format(check.reproduced),
                         f"{check.difference:.3g}", f"{check.tolerance:.3g}", "PASS" if check.passed else "FAIL"])
    headers = ["task", "metric", "published", "reproduced", "|diff of means|", "tolerance", "result"]
    lines.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    lines.append("PASS" if ok else "FAIL")
    return "\n".join(lines), ok
