"""The regression task at paper scale through the protocol, against a plain per-trial NumPy loop.

Configuration (the ``paper`` preset): d = 100, T = T0 = 500, 1,000 trials, 20 generations, fixed design
(one design matrix per seed, shared by the trials), least squares, for replace, accumulate,
accumulate-subsample and accumulate[compute=growing]. Under matched compute (protocol v2 on) every
standard fit processes T examples: accumulate's fit draws T of the accumulated rows without
replacement, the same experiment as accumulate-subsample's; only accumulate[compute=growing] fits
the whole accumulated pool (Gerstgrasser et al. 2024's accumulate, with its growing compute).

Each case runs in its own subprocess, one BLAS thread (OPENBLAS_NUM_THREADS=1: numpy's OpenBLAS
otherwise fights other processes for the cores), and reports its wall time and peak resident memory
(``resource.getrusage`` of the subprocess); the protocol run also reports its run directory's size,
and both their CPU seconds (the strategy's processes included), which a loaded machine inflates less
than wall time. The reference is what one would write by hand for the same experiment: per trial,
per generation, form the normal equations of that generation's training rows and labels and call
``np.linalg.solve``; it keeps nothing on disk. Its final loss must agree with the protocol's
(the same expectation; the random draws differ), which the last columns show.

For replace a third implementation bounds what any implementation that keeps records can reach:
the same experiment with every trial at once and nothing kept (one d x T least-squares operator
of the fixed design, applied to all trials' labels per generation; nothing on disk, no strategy,
no provenance). Its speed-up over the plain loop is the ceiling of the protocol's: the label
noise alone (T x trials normals per generation) is most of its time.

    python tests/perf/bench_linear_regression.py [--generations 20] [--trials 1000] [--strategies replace,...]
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads: one BLAS thread in both implementations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

STRATEGIES = ("replace", "accumulate", "accumulate-subsample", "accumulate[compute=growing]")


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def collapselab_case(strategy: str, trials: int, generations: int) -> dict[str, float]:
    from collapselab.contracts import registry
    from collapselab.engine.loop import RunSpec, execute

    task = registry.make_task("linear_regression", "paper", {"trials": trials})
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        run = execute(RunSpec(task, registry.make_strategy(strategy), 0, generations, Path(root), command=["bench"]),
                      progress=False)
        seconds = time.perf_counter() - start
        size = directory_bytes(Path(root))
    metrics = run.records[-1].metrics
    return {"seconds": seconds, "disk_mb": size / 2**20, "loss": metrics["loss"],
            "theory": metrics.get("theory_loss", float("nan"))}


def plain_case(strategy: str, trials: int, generations: int) -> dict[str, float]:
    """The hand-written loop: one trial at a time, np.linalg.solve on each fit's normal equations."""
    d, t, noise = 100, 500, 1.0
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    x = rng.standard_normal((t, d))  # the fixed design
    losses = []
    for _ in range(trials):
        w_star = rng.standard_normal(d)
        w_star /= np.linalg.norm(w_star)
        labels = [x @ w_star + np.sqrt(noise) * rng.standard_normal(t)]
        w = np.linalg.solve(x.T @ x, x.T @ labels[0])
        for _ in range(generations):
            labels.append(x @ w + np.sqrt(noise) * rng.standard_normal(t))
            if strategy == "replace":
                rows, y = x, labels[-1]
            elif strategy == "accumulate[compute=growing]":  # the whole accumulated pool
                rows, y = np.vstack([x] * len(labels)), np.concatenate(labels)
            else:  # accumulate and accumulate-subsample: T of the accumulated rows, without replacement
                chosen = rng.choice(t * len(labels), size=t, replace=False)
                rows, y = x[chosen % t], np.concatenate(labels)[chosen]
            w = np.linalg.solve(rows.T @ rows, rows.T @ y)
        losses.append(float(np.sum((w - w_star) ** 2)))
    return {"seconds": time.perf_counter() - start, "loss": float(np.mean(losses))}


def ceiling_case(strategy: str, trials: int, generations: int) -> dict[str, float]:
    """Replace with all trials at once and nothing kept: w_g = P (X w_{g-1} + noise), P = (X^T X)^-1 X^T."""
    if strategy != "replace":
        raise ValueError("the bookkeeping-free ceiling is measured for replace only")
    d, t = 100, 500
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    x = rng.standard_normal((t, d))
    w_star = rng.standard_normal((d, trials))
    w_star /= np.linalg.norm(w_star, axis=0)
    s, v = np.linalg.eigh(x.T @ x)
    operator = (v / s) @ v.T @ x.T  # (d, T): least squares on the fixed design
    w = operator @ (x @ w_star + rng.standard_normal((t, trials)))
    for _ in range(generations):
        w = operator @ (x @ w + rng.standard_normal((t, trials)))
    return {"seconds": time.perf_counter() - start, "loss": float(np.mean(np.sum((w - w_star) ** 2, axis=0)))}


IMPLEMENTATIONS = {"collapselab": collapselab_case, "plain": plain_case, "ceiling": ceiling_case}


def run_case(impl: str, strategy: str, trials: int, generations: int) -> dict[str, float]:
    """One case in a fresh interpreter; adds its peak resident memory."""
    command = [sys.executable, __file__, "--case", impl, strategy, str(trials), str(generations)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its ended children (the strategy's processes)."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def child(impl: str, strategy: str, trials: int, generations: int) -> None:
    result = IMPLEMENTATIONS[impl](strategy, trials, generations)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if impl == "collapselab":
        from collapselab.engine import sandbox

        sandbox.close_all()  # the strategy's processes end (and are waited for) before their CPU time is read
    result["cpu_seconds"] = cpu_seconds()
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores")
    rows = []
    for strategy in args.strategies.split(","):
        ours = run_case("collapselab", strategy, args.trials, args.generations)
        plain = run_case("plain", strategy, args.trials, args.generations)
        rows.append([strategy, f"{ours['seconds']:.2f}", f"{ours['cpu_seconds']:.2f}", f"{ours['peak_mb']:.0f}",
                     f"{ours['disk_mb']:.0f}", f"{plain['seconds']:.2f}", f"{plain['cpu_seconds']:.2f}",
                     f"{plain['peak_mb']:.0f}", f"{plain['seconds'] / ours['seconds']:.1f}x",
                     f"{plain['cpu_seconds'] / ours['cpu_seconds']:.1f}x", f"{ours['loss']:.4f}", f"{ours['theory']:.4f}",
                     f"{plain['loss']:.4f}"])
    print(f"d=100 T=T0=500 trials={args.trials} generations={args.generations} (paper preset, fixed design, "
          "least squares, one BLAS thread)")
    headers = ["strategy", "CollapseLab s", "CPU s", "peak MB", "run dir MB", "plain loop s", "plain CPU s", "plain peak MB",
               "speedup", "CPU speedup", "final loss", "theory", "plain final loss"]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    if "replace" in args.strategies.split(","):
        ceiling = run_case("ceiling", "replace", args.trials, args.generations)
        plain = run_case("plain", "replace", args.trials, args.generations)
        print(f"replace with nothing kept (all trials at once, no records, pools, strategy or provenance): "
              f"{ceiling['seconds']:.2f} s, plain loop {plain['seconds']:.2f} s in the same call: the ceiling of any "
              f"implementation is {plain['seconds'] / ceiling['seconds']:.1f}x (final loss {ceiling['loss']:.4f})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
