"""What the leaderboard costs: seconds per generation by phase, and the projected wall time of the board.

    python tests/perf/bench_board_cost.py [--tasks linear_regression,text_lm] [--generations 2] [--seed 0]
                                          [--strategies replace] [--jobs 2] [--preset cpu] [--json FILE]
    python tests/perf/bench_board_cost.py --records leaderboard/submissions/replace.json   # committed timings

For each task it runs one seed of each strategy in ``--strategies`` (``replace`` by default) at
the preset, ``--generations`` synthetic generations (few keep it cheap), and reads the seconds
per phase the loop records in the run's ``generations.jsonl``: fit, sample, evaluate, hooks
(the strategy's ``curate`` and the rest of its turn, where verifier, reward and feature hooks
run), artifacts, and other (the run's recorded seconds in its manifest less those phases:
checkpoints, pool and provenance bookkeeping, the strategy's sandbox; spread evenly over the
generations). ``--records`` reads the records of finished runs or of an entry instead of
running anything.

From the measured generations it projects two wall times at ``--jobs`` parallel runs:

- the **board**: every shipped entry (:func:`collapselab.leaderboard.baselines.entries`) on
  each task it applies to, on the task's leaderboard seeds, at the task's default number of
  generations, with generation 0 fitted once per (task, seed) and shared, as the board does;
- one new strategy's **submission**: every task, ``--submission-seeds`` seeds (3), each run
  fitting its own generation 0.

An entry that was not measured is projected at the measured cost of the first strategy in
``--strategies``, except for the fit of an extra-compute entry, scaled by the optimiser steps
it asks for (``accumulate[compute=growing]`` trains on ``g + 1`` times the budget at
generation ``g``). Runs are packed onto the parallel slots longest first; the figures assume
the measured per-run speed holds when ``--jobs`` runs share the machine, so measure with the
same contention (``OMP_NUM_THREADS=1`` and two runs at once) to project honestly. Each task's
lines name the CPU and BLAS kernel its timings come from (the runs' manifests): seconds recorded
on another kind of machine, or under other load, do not project this one.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import heapq
import json
import sys
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PHASES = ("fit", "sample", "evaluate", "hooks", "artifacts", "other")
#: Entry spec -> the fit's step multiplier at generation g (extra-compute entries; see baselines/accumulate.py).
STEP_MULTIPLIERS = {"accumulate[compute=growing]": lambda g: g + 1}


def phase_seconds(record: dict[str, Any], other: float) -> dict[str, float]:
    """A generation record's seconds, with the strategy's turn (curate and the rest) as ``hooks``."""
    seconds = record["seconds"]
    return {"fit": seconds.get("fit", 0.0), "sample": seconds.get("sample", 0.0),
            "evaluate": seconds.get("evaluate", 0.0), "hooks": seconds.get("curate", 0.0) + seconds.get("strategy", 0.0),
            "artifacts": seconds.get("artifacts", 0.0), "other": other}


def mean_phases(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean seconds per phase over ``rows`` (zeros when there are none)."""
    return {p: sum(r[p] for r in rows) / len(rows) if rows else 0.0 for p in PHASES}


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Generation 0 and the synthetic generations' mean seconds per phase over runs (``manifest`` and ``records``)."""
    from collapselab.engine import environment

    first, later, machines = [], [], set()
    for run in runs:
        records = run["records"]
        machines.add(environment.machine(run["manifest"].get("environment", {})))
        recorded = sum(sum(r["seconds"].values()) for r in records if not r.get("shared"))
        other = max(0.0, float(run["manifest"]["timings"]["seconds"]) - recorded) / len(records)
        first += [phase_seconds(r, other) for r in records if r["generation"] == 0]  # a shared one keeps its seconds
        later += [phase_seconds(r, other) for r in records if r["generation"] > 0]
    return {"generation0": mean_phases(first), "generation": mean_phases(later), "runs": len(runs),
            "generations": len(later), "machines": sorted(machines)}


def measure(task_name: str, spec: str, preset: str, seed: int, generations: int, root: Path) -> dict[str, Any]:
    """Run one seed of ``spec``: its manifest and the records of its ``generations.jsonl``, as JSON."""
    from collapselab.contracts.registry import make_strategy, make_task
    from collapselab.engine.loop import RunSpec, execute
    from collapselab.formats.records import as_json

    task = make_task(task_name, preset)
    run = execute(RunSpec(task, make_strategy(spec), seed, generations, root, strategy_spec=spec,
                          command=["bench_board_cost"], share_generation0=False), progress=False)
    # execute returns the run as its files hold it; as JSON, the form an entry holds (what --records reads)
    return {"manifest": as_json(run.manifest), "records": [as_json(r) for r in run.records]}


def records_from(path: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(task, strategy spec) -> each run's manifest and records, from an entry's JSON or from run directories."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    if path.is_file():
        entry = json.loads(path.read_text(encoding="utf-8"))
        for task, section in entry["tasks"].items():
            for run in section["runs"]:
                found[(task, run["manifest"]["strategy"]["spec"])].append(run)
        return found
    from collapselab.engine.rundir import find_runs
    from collapselab.formats.records import as_json

    for found_run in find_runs([path]):  # as a submission holds them
        manifest = as_json(found_run.manifest)
        found[(manifest["task"]["name"], manifest["strategy"]["spec"])].append(
            {"manifest": manifest, "records": [as_json(r) for r in found_run.records]})
    return found


def run_seconds(cost: dict[str, Any], generations: int, with_generation0: bool, spec: str = "") -> float:
    """The projected seconds of one run: generation 0 (unless shared) and ``generations`` synthetic ones."""
    later = cost["generation"]
    multiplier = STEP_MULTIPLIERS.get(spec, lambda g: 1)
    rest = sum(later[p] for p in PHASES if p != "fit")
    total = sum(later["fit"] * multiplier(g) + rest for g in range(1, generations + 1))
    return total + (sum(cost["generation0"].values()) if with_generation0 else 0.0)


def makespan(durations: Sequence[float], slots: int) -> float:
    """Wall time of ``durations`` packed longest first onto ``slots`` parallel workers."""
    loads = [0.0] * max(1, slots)
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def board_jobs(task_name: str, preset: str, costs: dict[str, dict[str, Any]], default: str) -> tuple[list[float], list[str]]:
    """Projected seconds of every run the board makes on ``task_name``, and the entries it leaves out there."""
    from collapselab.contracts.registry import task_class
    from collapselab.leaderboard.baselines import entries, leaderboard_seeds
    from collapselab.operations.execution import sweep

    generations = task_class(task_name).presets[preset]["generations"]
    specs = sorted(set(entries().values()))
    with tempfile.TemporaryDirectory() as root:
        planned, skipped = sweep.plan([task_name], specs, leaderboard_seeds(task_name), preset, None, Path(root))
    shared: set[int] = set()
    durations = []
    for job in planned:
        first = job.seed not in shared
        shared.add(job.seed)
        durations.append(run_seconds(costs.get(job.strategy, costs[default]), generations, first, job.strategy))
    return durations, [spec for _, spec, _ in skipped]


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="linear_regression,mnist_vae,text_lm,conformer_diffusion")
    parser.add_argument("--strategies", default="replace", help="strategies to measure (the first stands in for the rest)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=2, help="synthetic generations to measure (default 2)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs to project for (default 2)")
    parser.add_argument("--submission-seeds", type=int, default=3)
    parser.add_argument("--records", type=Path, default=None,
                        help="read the timings of finished runs (a runs folder or an entry's JSON) instead of running")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    from collapselab.contracts.registry import task_class
    from collapselab.leaderboard.baselines import entries

    tasks = [t for t in args.tasks.split(",") if t]
    strategies = [s for s in args.strategies.split(",") if s]
    default = strategies[0]
    print(f"preset {args.preset}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cpus {os.cpu_count()}, "
          f"projection at --jobs {args.jobs}")

    found = records_from(args.records) if args.records else {}
    report: dict[str, Any] = {"tasks": {}}
    board: list[float] = []
    submission: list[float] = []
    for task_name in tasks:
        costs: dict[str, dict[str, Any]] = {}
        for spec in strategies:
            if args.records:
                runs = found.get((task_name, spec))
                if not runs:
                    continue
            else:
                with tempfile.TemporaryDirectory() as root:
                    runs = [measure(task_name, spec, args.preset, args.seed, args.generations, Path(root))]
            costs[spec] = summarise(runs)
        if default not in costs:
            print(f"{task_name}: no timings of {default}; left out of the projection")
            continue
        for spec, cost in costs.items():
            for label, phases in (("generation 0", cost["generation0"]), ("per generation", cost["generation"])):
                cells = "  ".join(f"{p} {phases[p]:7.2f}" for p in PHASES)
                print(f"{task_name:<20} {spec:<12} {label:<15} {sum(phases.values()):8.2f} s = {cells}")
            # seconds compare only on one kind of machine (and under one load)
            print(f"{task_name:<20} {spec:<12} timed on {'; '.join(cost['machines'])} ({cost['runs']} run(s))")
        durations, left_out = board_jobs(task_name, args.preset, costs, default)
        generations = task_class(task_name).presets[args.preset]["generations"]
        own = [run_seconds(costs[default], generations, True)] * args.submission_seeds
        guessed = sorted({spec for spec in entries().values() if spec not in costs and spec not in left_out})
        print(f"{task_name:<20} board: {len(durations)} runs, {minutes(sum(durations))} of single runs"
              f" (not applicable: {', '.join(left_out) or 'none'}; at {default}'s cost: {', '.join(guessed)});"
              f" submission: {minutes(sum(own))} of single runs")
        board += durations
        submission += own
        report["tasks"][task_name] = {"costs": costs, "board_runs": len(durations), "board_run_seconds": sum(durations),
                                      "submission_run_seconds": sum(own), "not_applicable": left_out}
    report["board_wall_seconds"] = makespan(board, args.jobs)
    report["submission_wall_seconds"] = makespan(submission, args.jobs)
    print(f"projected wall time at --jobs {args.jobs}: board ({', '.join(report['tasks'])}) "
          f"{minutes(report['board_wall_seconds'])}; one submission ({args.submission_seeds} seeds) "
          f"{minutes(report['submission_wall_seconds'])}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
