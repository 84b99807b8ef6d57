"""``collapselab reproduce``: re-run a published entry and compare with its numbers.

For each task the entry's strategy (same name and parameters) is run again at the entry's
preset through the sweep machinery, then the published and the reproduced L_0, L_G and
collapse ratio L_G/L_0 are compared as means over seeds. The tolerance comes from the
published seed-to-seed spread: a difference of two means passes when

    |mean_reproduced - mean_published| <= Z * s * sqrt(1/n_published + 1/n_reproduced)

with ``s`` the published standard deviation over seeds (ddof=1) and ``Z = 3`` (the usual
three-standard-error band of a two-sample comparison; Welch 1947 with both spreads taken as
the published one). Re-running the published seeds on the same machine reproduces them
exactly (the loop's seed streams), which the per-seed check reports; other hardware or seeds
vary within the spread. The tolerance never goes below ``RELATIVE_FLOOR * |mean|``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapselab.contracts import registry
from collapselab.contracts.params import parse_spec
from collapselab.engine.rundir import load_run
from collapselab.errors import CollapseLabError, PluginError
from collapselab.operations import submission, sweep
from collapselab.operations.jobs import Job
from collapselab.operations.launchers import LauncherSettings
from collapselab.scoring.report import strategy_display

Z = 3.0
RELATIVE_FLOOR = 1e-9


@dataclass(frozen=True)
class Check:
    """One published-vs-reproduced comparison."""

    task: str
    metric: str
    published: list[float]
    reproduced: list[float]

    @property
    def difference(self) -> float:
        return abs(float(np.mean(self.reproduced)) - float(np.mean(self.published)))

    @property
    def tolerance(self) -> float:
        return tolerance(self.published, len(self.reproduced))

    @property
    def passed(self) -> bool:
        return self.difference <= self.tolerance


def tolerance(published: Sequence[float], n_reproduced: int, z: float = Z) -> float:
    """The allowed |difference of means| (see the module docstring)."""
    values = np.asarray(published, dtype=np.float64)
    floor = RELATIVE_FLOOR * max(abs(float(values.mean())), 1e-300)
    if values.size < 2 or n_reproduced < 1:
        return floor
    spread = float(values.std(ddof=1)) * math.sqrt(1.0 / values.size + 1.0 / n_reproduced)
    return max(z * spread, floor)


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

    The code is ``override`` if given, else the strategy installed under the entry's name,
    else the ``file.py:Class`` the runs were made with (relative to the current folder).
    """
    strategy = entry["strategy"]
    base = override or strategy["name"]
    if override is None and strategy["name"] not in registry.strategy_names():
        recorded = next(iter(entry["tasks"].values()))["runs"][0]["manifest"]["strategy"]["spec"]
        base = parse_spec(recorded)[0]
    spec = strategy_display(base, strategy["params"])
    try:
        built = registry.make_strategy(spec)
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
    return int(value) if value.isdigit() and int(value) > 0 else None


def _seeds_text(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _format(values: Sequence[float]) -> str:
    mean = float(np.mean(values))
    spread = f" ± {np.std(values, ddof=1):.2g}" if len(values) > 1 else ""
    return f"{mean:.6g}{spread} (n={len(values)})"


def compare(task: str, published: Mapping[int, list[float]], reproduced: Mapping[int, list[float]]) -> list[Check]:
    """L_0, L_G and L_G/L_0 checks from seed -> loss curve maps."""
    def column(curves: Mapping[int, list[float]], metric: str) -> list[float]:
        pick = {"L_0": lambda c: c[0], "L_G": lambda c: c[-1], "L_G/L_0": lambda c: c[-1] / c[0]}[metric]
        return [float(pick(curve)) for _, curve in sorted(curves.items())]

    return [Check(task, m, column(published, m), column(reproduced, m)) for m in ("L_0", "L_G", "L_G/L_0")]


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
    installed = registry.source_sha256(type(registry.make_strategy(spec)))
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
            lines.append(f"  same seeds: {identical}/{len(same)} curves identical, largest |difference| "
                         f"{max(same.values()):.3g}")
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
