"""``collapselab reproduce``: re-run a published entry and compare with its numbers.

For each task the entry's strategy (same name and parameters) is run again at the entry's
preset through the sweep machinery. Re-run published seeds are compared seed by seed, each on
its own: every generation's loss to the machine's tolerance (bit for bit when the seed's
published run recorded the same BLAS kernel, thread count, CPU and library versions as the
re-run; else within a relative :data:`KERNEL_RTOL`, far above the last-bit differences of
another kernel), and every generation's composition (real, synthetic per origin, fresh real,
total) and compute (examples, steps, samples drawn) exactly; one line per mismatch names the
seed, the generation and the field. The strategy's extra-real-data flag and the task's track
(as the scorer assigns it from what the runs trained on and spent) must match too. Seeds the
entry did not publish are compared by means over seeds, with a tolerance from the re-run seeds'
own spread (:func:`collapselab.scoring.scorer.reproduction_tolerance`): no tolerance comes from
the numbers the submitter published alone.

A task trained by gradient steps (its description has a step budget) is a chaotic map of its
floating-point rounding: a last-bit difference of another BLAS kernel grows through thousands of
optimiser steps and ten generations into differences of the order of the seed-to-seed spread
(measured: conformer_diffusion seed 0, Haswell against SkylakeX kernels, L_G/L_0 1.617 against
1.596). So a published seed re-run on another kernel of such a task is compared *statistically*
(:func:`statistical_seeds`): by the mean over the re-run seeds against the same seeds' published
mean, within the re-run seeds' own spread, which needs two or more seeds; its per-generation
values (losses, and the compositions and sample counts that depend on the model) are not
compared one by one. Its generation count, its extra-real-data flag and the track still must match.

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
from collapselab.engine.environment import NUMERICS_CHANGED, NUMERICS_FACTS
from collapselab.engine.rundir import load_run
from collapselab.errors import CollapseLabError, PluginError
from collapselab.formats import records, submission
from collapselab.formats.records import Record
from collapselab.operations.execution import sweep
from collapselab.operations.execution.jobs import Job, available_cpus
from collapselab.operations.execution.launchers import LauncherSettings
from collapselab.scoring import scorer
from collapselab.scoring.report import strategy_display

#: How far one seed's re-run may differ from its published run, relative, when the two ran on another
#: BLAS kernel, thread count, CPU or library version (on the same, they agree bit for bit).
KERNEL_RTOL = scorer.SAME_RUN_RTOL
#: Mismatch lines shown per task (the rest are counted).
MAX_MISMATCHES = 20


@dataclass(frozen=True)
class Check:
    """One published-vs-reproduced comparison of a metric of the loss curves: per seed (``paired``:
    the same seeds, in the same order; the largest difference counts) or of the means over seeds."""

    task: str
    metric: str
    published: list[float]
    reproduced: list[float]
    tolerance: float
    paired: bool

    @property
    def difference(self) -> float:
        if self.paired:
            return float(np.max(np.abs(np.subtract(self.reproduced, self.published))))
        return abs(float(np.mean(self.reproduced)) - float(np.mean(self.published)))

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


#: metric -> (its value on a loss curve, a bound on how much a relative error of each loss moves it).
METRICS = {
    "L_0": (lambda c: c[0], lambda c: abs(c[0])),
    "area": (scorer.excess_area, lambda c: sum(abs(x) + abs(c[0]) for x in c[1:])),
    "L_G": (lambda c: c[-1], lambda c: abs(c[-1])),
    "L_G/L_0": (lambda c: c[-1] / c[0], lambda c: 2.0 * abs(c[-1] / c[0])),
}


def compare(task: str, published: Mapping[int, list[float]], reproduced: Mapping[int, list[float]],
            rtol: Mapping[int, float] | None = None, statistical: frozenset[int] = frozenset()) -> list[Check]:
    """L_0, excess area, L_G and L_G/L_0 checks from seed -> loss curve maps.

    Re-run published seeds are compared seed by seed, each within ``rtol[seed]`` (default
    :data:`KERNEL_RTOL`; 0: bit for bit) of what a relative error of its losses can move the
    metric, except the ``statistical`` ones (re-run on another kernel of a gradient-trained task):
    their mean against the same seeds' published mean; seeds the entry did not publish, by the
    mean over them against the mean over every published seed. Both means are compared within
    :func:`~collapselab.scoring.scorer.reproduction_tolerance` of the re-run seeds' own spread
    (one seed alone has none: only rounding passes)."""
    paired = sorted((set(reproduced) & set(published)) - statistical)
    same = sorted(set(reproduced) & set(published) & statistical)
    new = sorted(set(reproduced) - set(published))
    checks = []
    for metric, (value, scale) in METRICS.items():
        if same:
            before = [float(value(published[s])) for s in same]
            after = [float(value(reproduced[s])) for s in same]
            checks.append(Check(task, metric, before, after,
                                scorer.reproduction_tolerance(before, len(after), spread_of=after), False))
        if paired:
            tolerance = max((rtol or {}).get(s, KERNEL_RTOL) * float(scale(published[s])) for s in paired)
            checks.append(Check(task, metric, [float(value(published[s])) for s in paired],
                                [float(value(reproduced[s])) for s in paired], tolerance, True))
        if new:
            before = [float(value(c)) for _, c in sorted(published.items())]
            after = [float(value(reproduced[s])) for s in new]
            checks.append(Check(task, metric, before, after,
                                scorer.reproduction_tolerance(before, len(after), spread_of=after), False))
    return checks


def _facts(environment: Mapping[str, Any]) -> tuple:
    return tuple(environment.get(k) for k in NUMERICS_FACTS)


def same_kernel(published_runs: Sequence[Mapping[str, Any]], reproduced_runs: Sequence[Any]) -> bool:
    """Whether both sides recorded the same BLAS kernel and thread settings (then same seeds are bit-identical);
    never for a run resumed under other numerics than it started with (:data:`NUMERICS_CHANGED`)."""
    environments = [run.manifest.environment for run in reproduced_runs] + \
        [run["manifest"]["environment"] for run in published_runs]
    if any(env.get(NUMERICS_CHANGED) for env in environments):
        return False
    facts = {_facts(env) for env in environments}
    return len(facts) == 1 and None not in next(iter(facts))


def statistical_seeds(published: Mapping[int, Mapping[str, Any]], runs: Sequence[Any], gradient: bool) -> frozenset[int]:
    """The re-run published seeds compared by means (see the module docstring): those of a
    gradient-trained task whose run recorded other numerics than the published run and whose loss
    curve left :data:`KERNEL_RTOL` of it. A closed-form task gets none: on any kernel its seeds agree
    within that tolerance, so a difference beyond it is a different computation."""
    if not gradient:
        return frozenset()
    return frozenset(
        run.seed for run in runs
        if run.seed in published and not same_kernel([published[run.seed]], [run])
        and not scorer.curves_agree([r["metrics"]["loss"] for r in published[run.seed]["records"]], run.curve(),
                                    KERNEL_RTOL)
    )


def _kernel(environment: Mapping[str, Any]) -> str:
    return f"{environment.get('blas_kernel')}, {environment.get('omp_num_threads')} thread(s)"


def _fields(record: Record) -> dict[str, Any]:
    """A generation record's composition and compute, flattened to ``composition/synthetic/1``-style names."""
    found = {}
    for group, part in (("composition", record.composition), ("compute", record.compute)):
        for key, value in part.model_dump().items():
            if isinstance(value, Mapping):
                found.update({f"{group}/{key}/{k}": v for k, v in value.items()})
            else:
                found[f"{group}/{key}"] = value
    return found


def run_mismatches(seed: int, published: Mapping[str, Any], reproduced: Any, rtol: float,
                   per_generation: bool = True) -> list[str]:
    """One line per way the re-run ``reproduced`` (a run directory) of a published run differs from
    it: the flag of extra real data, the generation count and (``per_generation``) each
    generation's loss (within ``rtol``), composition and compute (exactly)."""
    found = []
    flag = (published["manifest"]["strategy"]["uses_extra_real_data"], reproduced.manifest.strategy.uses_extra_real_data)
    if flag[0] != flag[1]:
        found.append(f"seed {seed}, strategy/uses_extra_real_data: published {flag[0]}, reproduced {flag[1]}")
    if len(published["records"]) != len(reproduced.records):
        found.append(f"seed {seed}, records: {len(published['records'])} generations published, "
                     f"{len(reproduced.records)} reproduced")
    if not per_generation:
        return found
    for g, (theirs, ours) in enumerate(zip(records.records_of(published), reproduced.records)):
        loss = (theirs.metrics["loss"], ours.metrics["loss"])
        if not scorer.curves_agree([loss[0]], [loss[1]], rtol):
            found.append(f"seed {seed}, generation {g}, metrics/loss: published {loss[0]!r}, reproduced {loss[1]!r} "
                         f"(|difference| {abs(loss[0] - loss[1]):.3g}; {_rtol_text(rtol)})")
        before, after = _fields(theirs), _fields(ours)
        for field in sorted(set(before) | set(after)):
            if before.get(field) != after.get(field):
                found.append(f"seed {seed}, generation {g}, {field}: published {before.get(field)!r}, "
                             f"reproduced {after.get(field)!r}")
    return found


def _rtol_text(rtol: float) -> str:
    return "bit for bit" if rtol == 0 else f"within a relative {rtol:g}"


def section_track(runs: Sequence[Sequence[Record]]) -> str:
    """The scorer's track of a task section, with its extra-compute flag, from its runs' records."""
    extra = any(scorer.uses_extra_compute(run) for run in runs)
    return scorer.track(runs) + (", extra compute" if extra else "")


def task_mismatches(entry: Mapping[str, Any], task: str, runs: Sequence[Any],
                    statistical: frozenset[int] = frozenset()) -> tuple[list[str], dict[int, float]]:
    """Every per-seed mismatch of the re-runs ``runs`` of ``task`` against the published section,
    and each re-run published seed's loss tolerance (0 on the same kernel). The ``statistical``
    seeds are checked for their generation count and extra-real-data flag only."""
    section = entry["tasks"][task]
    published = {run["seed"]: run for run in section["runs"]}
    found, rtol = [], {}
    if runs:
        theirs = section_track([records.records_of(run) for run in section["runs"]])
        ours = section_track([run.records for run in runs])
        if theirs != ours:
            found.append(f"track: published {theirs!r}, reproduced {ours!r}")
    for run in sorted(runs, key=lambda r: r.seed):
        if run.seed in statistical:
            found.extend(run_mismatches(run.seed, published[run.seed], run, KERNEL_RTOL, per_generation=False))
        elif run.seed in published:
            rtol[run.seed] = 0.0 if same_kernel([published[run.seed]], [run]) else KERNEL_RTOL
            found.extend(run_mismatches(run.seed, published[run.seed], run, rtol[run.seed]))
    return found, rtol


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
        by_seed = {run["seed"]: run for run in section["runs"]}
        gradient = registry.make_task(task, entry["preset"]).describe().step_budget is not None
        statistical = statistical_seeds(by_seed, runs, gradient)
        mismatches, rtol = task_mismatches(entry, task, runs, statistical)
        same = seed_differences(published, reproduced)
        if same:
            identical = sum(1 for d in same.values() if d == 0.0)
            exact = sum(1 for seed in same if rtol.get(seed) == 0.0)
            close = sum(1 for seed in same if rtol.get(seed) == KERNEL_RTOL)
            lines.append(f"  same seeds: {identical}/{len(same)} curves identical, largest |difference| "
                         f"{max(same.values()):.3g}; each on its own: {exact} bit for bit (same BLAS kernel and "
                         f"threads), {close} within a relative {KERNEL_RTOL:g} (another kernel, thread "
                         f"count or library version); {len(statistical)} by means (another kernel, gradient training)")
        if statistical:
            seeds = sorted(statistical)
            lines.append(f"  seeds {_seeds_text(seeds)} ran on other numerics than published (published: "
                         f"{_kernel(by_seed[seeds[0]]['manifest']['environment'])}; here: "
                         f"{_kernel(next(r for r in runs if r.seed == seeds[0]).manifest.environment)}): "
                         "gradient training grows last-bit differences, so they are compared by their mean over "
                         "seeds against the same seeds' published mean, not value by value")
            if len(seeds) == 1:
                lines.append("  note: one seed compared statistically has no spread of its own: re-run two or more "
                             "seeds, or reproduce on the published kernel")
        if len(set(reproduced) - set(published)) == 1:
            lines.append("  note: one new seed has no spread of its own to compare means with: re-run two or more")
        if runs and runs[0].manifest.task.data != section["data"]:
            lines.append("  note: the task's data differ from the published runs' (another data source?)")
        if installed != section["runs"][0]["manifest"]["strategy"].get("source_sha256"):
            lines.append("  note: the installed strategy's source differs from the published runs' (source_sha256)")
        lines.extend(f"  MISMATCH {line}" for line in mismatches[:MAX_MISMATCHES])
        if len(mismatches) > MAX_MISMATCHES:
            lines.append(f"  ... and {len(mismatches) - MAX_MISMATCHES} more mismatches")
        ok &= not mismatches
        for check in compare(task, published, reproduced, rtol, statistical):
            ok &= check.passed
            rows.append([task, check.metric, "per seed" if check.paired else "means", _format(check.published),
                         _format(check.reproduced), f"{check.difference:.3g}", f"{check.tolerance:.3g}",
                         "PASS" if check.passed else "FAIL"])
    headers = ["task", "metric", "compared", "published", "reproduced", "|difference|", "tolerance", "result"]
    lines.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    lines.append("PASS" if ok else "FAIL")
    return "\n".join(lines), ok
