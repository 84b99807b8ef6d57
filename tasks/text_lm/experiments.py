"""The text task's studies, as a command (a driver script: the task itself never imports it).

    python -m collapselab.tasks.text_lm.experiments temperature --out DIR [--preset cpu]
        [--temperatures 0.6,1.0,1.4] [--real-fractions 0,0.5] [--generations 6] [--seed 0]

Heat death (Marchi, Soatto, Chaudhari & Tabuada 2024, "Heat Death of Generative Models in
Closed-Loop Learning", arXiv 2404.02325): in a closed loop the sampling temperature decides
where a model drifts. Below 1 each generation sharpens the distribution, so the text collapses
toward repetition (low byte entropy, high seq-rep-8); above 1 it flattens, so the text drifts
toward noise (byte entropy toward 8 bits, unigram KL to real text up); real data mixed into
every generation slows both. The study runs, for each temperature and real fraction, a
strategy that samples at that temperature and trains on the samples (mixed with that share of
the real pool), and plots per generation the held-out loss, the samples' byte entropy, their
repetition rate and their unigram KL to real text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collapselab import Pool, Strategy, StrategyContext
from collapselab.contracts import registry
from collapselab.engine.loop import RunSpec, execute
from collapselab.engine.rundir import Run

PANELS = (("loss", "held-out loss (bits/byte)"), ("unigram_entropy", "samples' byte entropy (bits)"),
          ("repetition", "seq-rep-8 of the samples"), ("unigram_kl", "KL(real || samples), bits"))


class SampleAtTemperature(Strategy):
    """Each generation samples at ``temperature`` and trains on the samples, mixed with a share
    ``real_fraction`` of the real pool (0: replace). The study strategy of the heat-death
    experiment (Marchi et al. 2024); not a mitigation, so it is not shipped as a baseline."""

    name = "sample-at-temperature"
    citation = "Marchi et al. 2024, arXiv 2404.02325"
    parameters = {"temperature": 1.0, "real_fraction": 0.0}
    temperature: float
    real_fraction: float

    def sampling_options(self, ctx: StrategyContext) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def training_pool(self, ctx: StrategyContext) -> Pool:
        n_real = round(self.real_fraction * ctx.budget.real_size)
        if not n_real:
            return ctx.latest
        return Pool.concat([ctx.subsample(ctx.real, n_real), ctx.subsample(ctx.latest, len(ctx.real) - n_real)])


def temperature_study(out: Path, preset: str, temperatures: Sequence[float], fractions: Sequence[float],
                      generations: int, seed: int) -> dict[tuple[float, float], Run]:
    registry.register_strategy(SampleAtTemperature)
    task = registry.make_task("text_lm", preset)
    runs = {}
    for fraction in fractions:
        for temperature in temperatures:
            strategy = SampleAtTemperature(temperature=temperature, real_fraction=fraction)
            spec = RunSpec(task, strategy, seed, generations, out / "runs", strategy_spec=strategy.name,
                           command=["python", "-m", "collapselab.tasks.text_lm.experiments", "temperature"])
            runs[(temperature, fraction)] = execute(spec, progress=False)
            curve = runs[(temperature, fraction)].curve("repetition")
            print(f"T={temperature:g} real={fraction:g}: seq-rep-8 {curve[0]:.3f} -> {curve[-1]:.3f}", flush=True)
    return runs


def plot(runs: dict[tuple[float, float], Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted({f for _, f in runs})
    temperatures = sorted({t for t, _ in runs})
    colours = plt.get_cmap("coolwarm")
    fig, axes = plt.subplots(len(fractions), len(PANELS), figsize=(4 * len(PANELS), 3.2 * len(fractions)),
                             squeeze=False, constrained_layout=True)
    for row, fraction in enumerate(fractions):
        for col, (metric, title) in enumerate(PANELS):
            ax = axes[row, col]
            for i, temperature in enumerate(temperatures):
                curve = runs[(temperature, fraction)].curve(metric)
                ax.plot(range(len(curve)), curve, marker="o", ms=3, color=colours(i / max(1, len(temperatures) - 1)),
                        label=f"T = {temperature:g}")
            ax.set_title(f"{title}\nreal fraction {fraction:g}", fontsize=9)
            ax.set_xlabel("generation")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("text_lm: heat death in the closed loop (Marchi et al. 2024)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collapselab.tasks.text_lm.experiments",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="experiment", required=True)
    p = sub.add_parser("temperature", help="the heat-death study over sampling temperatures")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--temperatures", default="0.6,1.0,1.4")
    p.add_argument("--real-fractions", default="0,0.5")
    p.add_argument("--generations", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    runs = temperature_study(args.out, args.preset, [float(t) for t in args.temperatures.split(",")],
                             [float(f) for f in args.real_fractions.split(",")], args.generations, args.seed)
    plot(runs, args.out / "temperature.png")
    print(f"wrote {args.out / 'temperature.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
