"""Speed of the regression task through the generic loop against a plain per-trial NumPy loop.

Same configuration for both (d=10, T=100, 100 trials, 100 generations, fixed design, OLS),
replace and accumulate. The CollapseLab path runs the real protocol (run directory, pool
and model files written durably every generation, records) with the trials vectorised as
pool replicas; the reference fits each trial separately with ``numpy.linalg.lstsq``. Prints
the end-to-end seconds, the compute seconds inside them (sample + strategy + fit + evaluate,
from the run's own records, i.e. without the per-generation file writes), the reference's
seconds, both speedups, and both final losses against the closed-form theory.

    python tests/perf/bench_linear_regression.py [--generations 100] [--trials 100]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # both paths single-threaded BLAS, like for like

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.tasks.linear_regression import theory


def reference_loop(strategy: str, dim: int, n_samples: int, trials: int, generations: int, seed: int) -> float:
    """The straightforward implementation: one trial at a time, one lstsq per generation."""
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(trials):
        w_star = rng.standard_normal(dim)
        w_star /= np.linalg.norm(w_star)
        x = rng.standard_normal((n_samples, dim))
        xs, ys = [x], [x @ w_star + rng.standard_normal(n_samples)]
        w = np.linalg.lstsq(x, ys[0], rcond=None)[0]
        for _ in range(generations):
            y = x @ w + rng.standard_normal(n_samples)
            if strategy == "replace":
                w = np.linalg.lstsq(x, y, rcond=None)[0]
            else:
                xs.append(x)
                ys.append(y)
                w = np.linalg.lstsq(np.concatenate(xs), np.concatenate(ys), rcond=None)[0]
        losses.append(float(np.sum((w - w_star) ** 2)))
    return float(np.mean(losses))


COMPUTE_PHASES = ("sample", "curate", "strategy", "fit", "evaluate")


def collapselab_loop(
    strategy: str, dim: int, n_samples: int, trials: int, generations: int, seed: int
) -> tuple[float, float]:
    """Final loss and the compute seconds (phases without file writes) of one protocol run."""
    overrides = {"dim": dim, "n_samples": n_samples, "trials": trials, "design": "fixed"}
    task = registry.make_task("linear_regression", "cpu", overrides)
    with tempfile.TemporaryDirectory() as root:
        spec = RunSpec(task, registry.make_strategy(strategy), seed, generations, Path(root), command=["bench"])
        run = execute(spec, progress=False)
    compute = sum(r["seconds"][phase] for r in run.records for phase in COMPUTE_PHASES)
    return run.curve()[-1], compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--generations", type=int, default=100)
    args = parser.parse_args()
    rows = []
    for strategy in ("replace", "accumulate"):
        config = (strategy, args.dim, args.samples, args.trials, args.generations, 0)
        start = time.perf_counter()
        ours, compute_seconds = collapselab_loop(*config)
        ours_seconds = time.perf_counter() - start
        start = time.perf_counter()
        ref = reference_loop(*config)
        ref_seconds = time.perf_counter() - start
        closed_form = theory.replace_risk if strategy == "replace" else theory.accumulate_risk
        expected = closed_form(args.generations + 1, args.dim, args.samples, 1.0)
        rows.append([strategy, f"{ours_seconds:.2f}", f"{compute_seconds:.2f}", f"{ref_seconds:.2f}",
                     f"{ref_seconds / ours_seconds:.1f}x", f"{ref_seconds / compute_seconds:.1f}x",
                     f"{ours:.4f}", f"{ref:.4f}", f"{expected:.4f}"])
    print(f"d={args.dim} T={args.samples} trials={args.trials} generations={args.generations} (fixed design, OLS)")
    headers = ["strategy", "end-to-end s", "compute s", "per-trial NumPy s", "speedup end-to-end",
               "speedup compute", "final loss", "reference loss", "theory"]
    print(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))


if __name__ == "__main__":
    main()
