"""Generation 0 of a task: the budget curve on the validation split and the wall time of one seed.

    python tests/perf/bench_generation0.py --task text_lm [--preset cpu] [--set key=value ...] [--seeds 0]
                                           [--multiples 0.25,0.5,1,2,4] [--runs replace,accumulate]

For each multiple m of the preset's budget B (optimiser steps, or a closed-form task's examples
per fit) it fits generation 0 on the real pool with m*B (the same seed stream as a run's
generation 0) and prints the VALIDATION loss and the task's quality metrics on validation
(``Task.validate``): model selection never reads the test split, which only ``evaluate`` reads.
The preset's budget is *converged for its pool* when its validation loss is within 2% of the
best over the multiples (a small pool overfits when trained longer, so more is not always
better). Then it times one full seed of each strategy in ``--runs`` at the preset (generation 0
included, nothing shared), the figure the time limits are about.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from collapselab.contracts import registry
from collapselab.contracts.params import parse_assignment
from collapselab.engine import seeding
from collapselab.engine.loop import RunSpec, execute

QUALITY = {"text_lm": ("unigram_kl", "repetition"), "mnist_vae": ("fd", "class_entropy"),
           "conformer_diffusion": ("bond_mae", "mat_r", "cov_r")}


def budget_knob(task) -> tuple[str, int]:
    """The fit option that sets one fit's budget and the preset's value of it."""
    if task.step_budget is not None:
        return "steps", task.step_budget
    return "examples", task.example_budget


def budget_curve(task, multiples: list[float], seed: int) -> list[dict]:
    """Generation 0 fitted at each multiple of the budget, scored on the validation split only."""
    task = task.for_seed(seed)  # a task that draws its data from the run seed draws this seed's
    knob, budget = budget_knob(task)
    rows = []
    for m in multiples:
        amount = max(1, round(m * budget))
        start = time.perf_counter()
        fitted = task.fit(task.real_pool(), {**task.fit_options, knob: amount}, seeding.stream(seed, 0, "fit"))
        fit_seconds = time.perf_counter() - start
        metrics = task.validate(fitted.model)
        rows.append({"multiple": m, knob: amount, "fit_s": round(fit_seconds, 1), "loss": metrics["loss"],
                     **{k: metrics[k] for k in QUALITY.get(task.name, ()) if k in metrics}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--multiples", default="0.25,0.5,1,2,4")
    parser.add_argument("--runs", default="replace,accumulate", help="strategies to time one seed of ('' for none)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    overrides = dict(parse_assignment(a) for a in args.set)
    task = registry.make_task(args.task, args.preset, overrides)
    knob, budget = budget_knob(task)
    print(f"{task.name} v{task.version} preset {args.preset} {overrides or ''}: budget {budget} {knob}, "
          f"batch {task.config.get('batch_size', '-')}, real pool {len(task.real_pool())} items, "
          f"threads OMP={os.environ.get('OMP_NUM_THREADS')}")
    report: dict = {"task": task.name, "preset": args.preset, "overrides": overrides, "budget": budget, "knob": knob}
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows = budget_curve(task, [float(m) for m in args.multiples.split(",")], seed)
        best = min(r["loss"] for r in rows)
        preset_row = next((r for r in rows if r["multiple"] == 1.0), None)  # None: x1 not asked for, no verdict
        gap = float("nan") if preset_row is None or best <= 0 else preset_row["loss"] / best - 1.0  # <= 0: an estimate
        for r in rows:
            extra = "  ".join(f"{k} {v:.4g}" for k, v in r.items() if k not in ("multiple", knob, "fit_s", "loss"))
            print(f"seed {seed}  x{r['multiple']:<5} {r[knob]:>6} {knob}  {r['fit_s']:>6} s  "
                  f"validation loss {r['loss']:.4f}  {extra}")
        if preset_row is None:
            print(f"seed {seed}: x1 is not among the multiples: no convergence verdict")
        else:
            verdict = "converged" if gap <= 0.02 else "NOT converged"
            print(f"seed {seed}: preset budget within {100 * gap:.2f}% of the best validation loss over the multiples: {verdict}")
        report.setdefault("curves", {})[seed] = {"rows": rows, "gap": gap}
    for strategy in [s for s in args.runs.split(",") if s]:
        with tempfile.TemporaryDirectory() as root:
            spec = RunSpec(task, registry.make_strategy(strategy), 0, task.default_generations, Path(root),
                           command=["bench"], share_generation0=False)
            start = time.perf_counter()
            run = execute(spec, progress=False)
            seconds = time.perf_counter() - start
        phases = {k: round(sum(r.seconds.get(k, 0.0) for r in run.records), 1) for k in ("fit", "sample", "evaluate")}
        curve = [round(r.metrics["loss"], 4) for r in run.records]
        print(f"{strategy}: one seed {seconds:.0f} s ({seconds / 60:.1f} min), phases {phases}; loss {curve}")
        report.setdefault("runs", {})[strategy] = {"seconds": seconds, "phases": phases, "curve": curve}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
