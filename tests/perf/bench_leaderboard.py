"""Timings of the leaderboard machinery against straightforward references, measured in one run.

1. Sweep: a grid of regression runs at the ``cpu`` preset, (a) one after another in this
   process (what a loop over ``collapselab run`` does, minus the interpreter start-ups),
   (b) ``sweep --jobs 1`` (one child process per run), (c) ``sweep --jobs N``.
2. Site build from the committed submissions, against only reading and validating them.

    flock /tmp/collapselab-cpu.lock python tests/perf/bench_leaderboard.py [--jobs 2] [--seeds 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.leaderboard import SUBMISSIONS, aggregate, site, validate
from collapselab.operations import jobs as jobs_module
from collapselab.operations import sweep

TASK = "linear_regression"
STRATEGIES = ("replace", "accumulate", "mix", "verifier-filter")


def in_process(root: Path, seeds: int) -> float:
    start = time.perf_counter()
    for spec in STRATEGIES:
        for seed in range(seeds):
            task = registry.make_task(TASK, "cpu")
            run = RunSpec(task, registry.make_strategy(spec), seed, task.default_generations, root, spec, ["bench"])
            execute(run, progress=False)
    return time.perf_counter() - start


def swept(root: Path, seeds: int, jobs: int) -> float:
    start = time.perf_counter()
    _, outcome = sweep.sweep([TASK], list(STRATEGIES), list(range(seeds)), "cpu", None, root, jobs, progress=False)
    assert outcome.ok, outcome.failed
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    runs = len(STRATEGIES) * args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reference = in_process(root / "serial", args.seeds)
        one = swept(root / "jobs1", args.seeds, 1)
        many = swept(root / f"jobs{args.jobs}", args.seeds, args.jobs)
        again = swept(root / f"jobs{args.jobs}", args.seeds, args.jobs)
        print(f"sweep of {runs} {TASK} runs (cpu preset) on {jobs_module.available_cpus()} cores")
        print(f"  in-process, one after another (reference): {reference:6.2f} s")
        print(f"  sweep --jobs 1:                             {one:6.2f} s  ({one / reference:.2f}x the reference)")
        print(f"  sweep --jobs {args.jobs}:                             {many:6.2f} s  ({many / reference:.2f}x the reference, "
              f"{one / many:.2f}x faster than --jobs 1)")
        print(f"  the same sweep again (all runs complete):    {again:6.2f} s")

        start = time.perf_counter()
        entries, problems = validate.load_entries(SUBMISSIONS)
        assert not problems, problems
        read = time.perf_counter() - start
        start = time.perf_counter()
        board = aggregate.aggregate(entries)
        scored = time.perf_counter() - start
        start = time.perf_counter()
        site.build(root / "site", SUBMISSIONS)
        built = time.perf_counter() - start
        tasks = len(board["tasks"])
        print(f"site from {len(entries)} committed entries, {tasks} task(s)")
        print(f"  read + validate only (reference): {read:6.2f} s")
        print(f"  aggregate (scores, bootstrap):    {scored:6.2f} s")
        print(f"  full build (validate, aggregate, plots, pages): {built:6.2f} s ({built / read:.1f}x the reference)")


if __name__ == "__main__":
    main()
