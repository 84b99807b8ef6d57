"""What running strategies in their own process costs per generation, against calling them in-process.

For each case (task, preset, strategy) the script builds the task's real pool and G synthetic
generations of the same size, then plays the strategy's part of one generation two ways:
- in-process (the reference, what the loop did before strategies had their own process): build the
  strategy and a context, call sample_size, sampling_options, curate, training_pool and fit_options;
- isolated: the same calls in a child forked from the strategy's template process, with the
  samples sent to it and its answers read back as data (:mod:`collapselab.engine.sandbox`), plus the
  new synthetic pool handed to the template, as the loop does each generation.
It prints the median seconds per generation of each and the difference (the isolation's overhead),
next to the seconds a real generation of that task spends fitting, from one run of the loop.

    python tests/perf/bench_isolation.py [--repeats 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

from collapselab.contracts import registry
from collapselab.contracts.strategy import Budget, StrategyContext
from collapselab.engine import sandbox, seeding
from collapselab.engine.loop import RunSpec, execute

CASES = (("linear_regression", "cpu", "replace"), ("linear_regression", "cpu", "accumulate"),
         ("mnist_vae", "cpu", "replace"), ("mnist_vae", "cpu", "accumulate"))
GENERATIONS = 10


def pools(task_name: str, preset: str) -> tuple[object, object, list]:
    task = registry.make_task(task_name, preset).for_seed(0)
    real = task.real_pool().sealed()
    synthetic = [real.with_origin(g).sealed() for g in range(1, GENERATIONS + 1)]
    return task, real, synthetic


def in_process(spec: str, task, real, synthetic, g: int) -> float:
    start = time.perf_counter()
    strategy = registry.make_strategy(spec)
    budget = Budget(len(real), task.synthetic_size(), task.step_budget)
    ctx = StrategyContext(g, real, tuple(synthetic[: g - 1]), task.describe(), seeding.stream(0, g, "curate"), budget)
    strategy.sample_size(ctx)
    strategy.sampling_options(ctx)
    curated = strategy.curate(ctx, synthetic[g - 1]).sealed()
    ctx = StrategyContext(g, real, (*synthetic[: g - 1], curated), task.describe(), seeding.stream(0, g, "strategy"), budget)
    strategy.training_pool(ctx)
    strategy.fit_options(ctx)
    return time.perf_counter() - start


def isolated(handle, task, real, synthetic, g: int) -> float:
    process = sandbox.StrategyProcess.shared(handle.location, handle.params)
    start = time.perf_counter()
    if g == 1:
        process.send_pools(real, [], reset=True)
    else:
        process.send_pools(None, [synthetic[g - 2]], reset=False)
    job = {"op": "generation", "generation": g, "task": sandbox.task_fields(task),
           "budget": {"real_size": len(real), "synthetic_size": task.synthetic_size(), "steps": task.step_budget},
           "rng": {p: seeding.stream(0, g, p).bit_generator.state for p in ("curate", "strategy")}, "hooks": [], "seed": g}
    known = {"real": real, "samples": synthetic[g - 1], **{f"synthetic:{h}": synthetic[h - 1] for h in range(1, g + 1)}}
    with process.child(job, handle.name, g) as child:
        child.resolve = known.__getitem__
        child.result("sample_size", None)
        child.result("sampling_options", None)
        child.send(synthetic[g - 1])
        child.result("curate", None)
        child.send(True)
        child.result("training_pool", None)
        child.result("fit_options", None)
    return time.perf_counter() - start


def fit_seconds(task_name: str, preset: str, strategy: str) -> float:
    """Median fit seconds per generation of a short real run (the cost the overhead is compared with)."""
    task = registry.make_task(task_name, preset)
    with tempfile.TemporaryDirectory() as root:
        run = execute(RunSpec(task, sandbox.describe(strategy), 0, 2, Path(root), command=["bench"]), progress=False)
    return statistics.median(r.seconds["fit"] for r in run.records[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of the G generations per case")
    args = parser.parse_args()
    rows = []
    for task_name, preset, spec in CASES:
        task, real, synthetic = pools(task_name, preset)
        handle = sandbox.describe(spec)
        direct, apart = [], []
        for _ in range(args.repeats):
            for g in range(1, GENERATIONS + 1):
                direct.append(in_process(spec, task, real, synthetic, g))
                apart.append(isolated(handle, task, real, synthetic, g))
        mb = sum(real[k].nbytes for k in real.keys) / 2**20
        d, i = statistics.median(direct), statistics.median(apart)
        rows.append([f"{task_name} {preset}", spec, f"{len(real)} items, {mb:.1f} MB", f"{d:.4f}", f"{i:.4f}", f"{i - d:+.4f}",
                     f"{fit_seconds(task_name, preset, spec):.3f}"])
    print(tabulate(rows, headers=["task", "strategy", "real pool", "in-process s/gen", "isolated s/gen", "overhead s/gen",
                                  "fit s/gen"]))
    print(f"(medians over {GENERATIONS} generations x {args.repeats} repeats; numpy {np.__version__})")


if __name__ == "__main__":
    main()
