"""Timings of the leaderboard machinery against straightforward references, measured in one run.

1. Sweep: a grid of regression runs at the ``cpu`` preset, (a) one after another in this
   process (what a loop over ``collapselab run`` does, minus the interpreter start-ups),
   (b) ``sweep --jobs 1`` (one child process per run), (c) ``sweep --jobs N``.
2. Site build from the committed submissions, against only reading and validating them.
3. Site build at many entries (``--entries 100,1000``): the committed entries and synthetic ones
   made from them (another name, losses scaled per entry, no gallery), timed per stage, with the
   ratio of the build times (10x for a build linear in the entries).

    flock /tmp/collapselab-cpu.lock python tests/perf/bench_leaderboard.py [--jobs 2] [--seeds 4]
    flock /tmp/collapselab-cpu.lock python tests/perf/bench_leaderboard.py --site-only [--entries 100,1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.leaderboard import SUBMISSIONS, aggregate, site, validate
from collapselab.operations.execution import jobs as jobs_module
from collapselab.operations.execution import sweep

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


def synthetic_submissions(folder: Path, count: int) -> Path:
    """``count`` entries in ``folder``: the committed ones (with their galleries) and copies of the
    non-reference ones under new names, each copy's losses after generation 0 scaled by its own factor."""
    shutil.copytree(SUBMISSIONS, folder)
    templates = [json.loads(path.read_text()) for path in sorted(SUBMISSIONS.glob("*.json"))]
    templates = [entry for entry in templates if entry["name"] != aggregate.REFERENCE]
    rng = np.random.default_rng(0)
    for index in range(count - len(list(SUBMISSIONS.glob("*.json")))):
        entry = json.loads(json.dumps(templates[index % len(templates)]))
        entry["name"] = f"{entry['name']}-{index:05d}"
        factor = float(rng.uniform(0.8, 1.2))
        for section in entry["tasks"].values():
            for run in section["runs"]:
                for record in run["records"][1:]:
                    record["metrics"]["loss"] *= factor
        (folder / f"{entry['name']}.json").write_text(json.dumps(entry))
    return folder


def site_at(root: Path, count: int) -> dict[str, float]:
    """Seconds to read + validate, aggregate, and build the whole site from ``count`` entries."""
    subs = synthetic_submissions(root / f"subs-{count}", count)
    start = time.perf_counter()
    entries, problems = validate.load_entries(subs)
    assert not problems and len(entries) == count, validate.flat(problems)[:3]
    read = time.perf_counter() - start
    start = time.perf_counter()
    aggregate.aggregate(entries)
    scored = time.perf_counter() - start
    start = time.perf_counter()
    site.build(root / f"site-{count}", subs)
    return {"read": read, "aggregate": scored, "build": time.perf_counter() - start}


def site_scaling(counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        timings = {count: site_at(Path(tmp), count) for count in counts}
    print(f"site build at many entries (committed + synthetic), on {jobs_module.available_cpus()} cores")
    for count, seconds in timings.items():
        print(f"  {count:6d} entries: read + validate {seconds['read']:7.2f} s, aggregate {seconds['aggregate']:7.2f} s, "
              f"full build {seconds['build']:7.2f} s")
    first, last = counts[0], counts[-1]
    if last != first:
        ratio = timings[last]["build"] / timings[first]["build"]
        print(f"  build time x{ratio:.1f} for x{last / first:.0f} the entries (linear: x{last / first:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--entries", default="100,1000", help="entry counts of the site-scaling part, comma-separated")
    parser.add_argument("--site-only", action="store_true", help="only the site build at --entries")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.entries.split(",")})
    if args.site_only:
        site_scaling(counts)
        return
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
    site_scaling(counts)


if __name__ == "__main__":
    main()
