"""Regenerate the shipped baselines' leaderboard entries: one sweep, then one submit per baseline.

    python -m collapselab.leaderboard.baselines --tasks all --jobs 2          # every task, every baseline
    python -m collapselab.leaderboard.baselines --tasks mnist_vae --jobs 2    # add a task that landed later

The baselines are the strategies whose entry points live in the ``baselines`` package, run
with their default parameters, and the variants of :data:`VARIANTS` (a baseline in another
paper's loop, or with its paper's original compute), at the leaderboard preset, on each task's
leaderboard seeds (:attr:`collapselab.Task.leaderboard_seeds`: 0-9 for the regression task,
0-2 for the neural ones) unless ``--seeds`` says otherwise. Each entry's runs are merged into
``leaderboard/submissions/<name>.json``: the tasks swept now are added or
replaced, the entry's other tasks are kept (unless the baseline's definition changed: then
the entry starts afresh from the new runs). Pairs a baseline cannot run (its own
``check_task``, or fresh real data the task lacks) are listed and left out; failed runs are
listed, leave that task out of the entry, and make the command exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from collapselab.contracts import registry
from collapselab.contracts.params import parse_seeds, parse_spec
from collapselab.contracts.task import LEADERBOARD_PRESET
from collapselab.errors import CollapseLabError, ParameterError
from collapselab.formats import gallery, submission
from collapselab.leaderboard import SUBMISSIONS, rules
from collapselab.operations.execution import sweep
from collapselab.operations.execution.jobs import Job
from collapselab.operations.execution.launchers import LauncherSettings
from collapselab.operations.publishing import submit

PACKAGE = "collapselab.baselines"
#: Entry name -> strategy spec of the shipped entries that run a baseline with other parameters.
VARIANTS = {
    "accumulate-growing": "accumulate[compute=growing]",  # Gerstgrasser et al.'s original: all the data, extra compute
    "verifier-filter-accumulate": "verifier-filter[accumulate=true]",  # verification in the augmentation loop
    "reward-curate-real": "reward-curate[real_fraction=0.5]",  # curation with real data (Ferbach et al., Thm 2.4)
    # The fresh data loop at smaller fresh shares: how much new real data per generation stops collapse
    # (Alemohammad et al. 2024 vary the fresh real data per generation against the synthetic data).
    "fresh-real-10": "fresh-real[real_fraction=0.1]",
    "fresh-real-20": "fresh-real[real_fraction=0.2]",
    "fresh-real-40": "fresh-real[real_fraction=0.4]",
}


def shipped() -> list[str]:
    """Names of the strategies shipped in the ``baselines`` package."""
    return sorted(ep.name for ep in entry_points(group=registry.STRATEGY_GROUP) if ep.value.startswith(f"{PACKAGE}."))


def entries() -> dict[str, str]:
    """Entry name -> strategy spec of every shipped entry: each baseline with its defaults, and the variants."""
    return {**{name: name for name in shipped()}, **VARIANTS}


def description(name: str, spec: str) -> str:
    """The entry's description: the first paragraph of the baseline module's docstring (and a variant's parameters)."""
    strategy, params = parse_spec(spec)
    cls = registry.strategy_class(strategy)
    module = sys.modules[cls.__module__]
    text = (module.__doc__ or cls.__doc__ or name).strip().split("\n\n")[0]
    variant = f" Run as {spec}." if params else ""
    return " ".join(text.split()) + variant + " Shipped CollapseLab baseline."


def leaderboard_seeds(task: str) -> list[int]:
    """The seeds the shipped entries run on ``task``: 0 .. the task's ``leaderboard_seeds`` - 1."""
    return list(range(registry.task_class(task).leaderboard_seeds))


def regenerate(
    tasks: Sequence[str], names: Sequence[str], seeds: Sequence[int] | None, out: Path, submissions: Path, parallel: int
) -> bool:
    """Sweep the entries ``names`` x ``tasks`` (on ``seeds``, default each task's leaderboard seeds)
    and merge each entry's finished runs into it."""
    known = entries()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ParameterError(f"unknown shipped entries {unknown}; choose among {sorted(known)}")
    specs = [known[name] for name in names]
    jobs: list[Job] = []
    not_applicable: list[tuple[str, str, str]] = []
    for task in tasks:
        planned, skipped = sweep.plan([task], specs, leaderboard_seeds(task) if seeds is None else seeds,
                                      LEADERBOARD_PRESET, None, out)
        jobs += planned
        not_applicable += skipped
    outcome = sweep.run_jobs(jobs, LauncherSettings(parallel=parallel).build(out))
    outcome.not_applicable = not_applicable
    print(sweep.summary(jobs, outcome))
    failed_pairs = {(job.task, job.strategy) for job, _ in outcome.failed}
    by_spec: dict[str, list[Path]] = defaultdict(list)
    for job in jobs:
        if (job.task, job.strategy) not in failed_pairs:
            by_spec[job.strategy].append(job.path)
    if outcome.interrupted:
        return False
    for name, spec in zip(names, specs):
        if by_spec[spec]:
            notes = submit.write_entry(by_spec[spec], submissions / f"{name}.json", name, description(name, spec), None,
                                       merge_into=True, restart_on_strategy_change=True)
            print("\n".join(notes))
    return outcome.ok


def drop_stale(names: Sequence[str], submissions: Path) -> list[str]:
    """Remove from the baselines' entries the task sections the installed code no longer accepts
    (run at an older task version or preset, by other task code at the same version, or by a
    baseline's earlier code: :func:`collapselab.leaderboard.rules.stale_sections`), and their
    samples from the entry's gallery: they
    cannot be ranked, and leaving them would make the whole entry invalid until that task is
    re-run. Returns what was dropped."""
    notes = []
    for name in names:
        path = submissions / f"{name}.json"
        if not path.exists():
            continue
        entry = submission.read(path)
        stale = rules.stale_sections(entry, entry["preset"])
        if not stale:
            continue
        kept = {task: section for task, section in entry["tasks"].items() if task not in stale}
        if not kept:
            notes.append(f"{path}: every section is stale ({', '.join(sorted(stale))}); the entry is left as it is")
            continue
        trimmed = {**entry, "tasks": kept}
        samples = gallery.read_for(path, entry)
        if samples is not None:  # the gallery follows its entry: samples of dropped tasks go too
            samples = {**samples, "tasks": {t: v for t, v in samples["tasks"].items() if t in kept}}
            if samples["tasks"]:
                gallery.write(gallery.path_for(path), samples, trimmed)
            else:
                gallery.path_for(path).unlink()
        submission.write(path, trimmed)
        notes += [f"{path}: dropped the stale {task} section ({problems[0]})" for task, problems in sorted(stale.items())]
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collapselab.leaderboard.baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="all", help="comma-separated tasks, or all (default)")
    parser.add_argument("--strategies", default=",".join(entries()),
                        help="shipped entries to run: baseline names or variant names (default: all)")
    parser.add_argument("--seeds", default=None,
                        help="seeds for every task (default: each task's leaderboard seeds, 0-9 for linear_regression)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--out", default="runs", help="root folder of the run directories (default runs/)")
    parser.add_argument("--submissions", default=str(SUBMISSIONS), help="folder of the entries")
    parser.add_argument("--drop-stale", action="store_true",
                        help="only remove the sections the installed code no longer accepts (older task version or "
                             "preset, changed task or baseline code) from the baselines' entries, and run nothing")
    args = parser.parse_args(argv)
    if args.drop_stale:
        print("\n".join(drop_stale(sweep.split_list(args.strategies), Path(args.submissions))) or "nothing stale")
        return 0
    try:
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
        ok = regenerate(sweep.names(args.tasks, "task"), sweep.split_list(args.strategies), seeds,
                        Path(args.out), Path(args.submissions), args.jobs)
    except CollapseLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
