"""Reports over run directories: per-generation tables (mean ± std over seeds, collapse
ratios, bootstrap CIs), a summary with the normalised score, and PNG plots of the curves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from collapselab.engine.identity import params_hash
from collapselab.engine.rundir import Run
from collapselab.scoring import scorer
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text


def strategy_display(name: str, params: Mapping[str, Any]) -> str:
    """``mix[real_fraction=0.5]`` style label of a strategy and its parameters."""
    if not params:
        return name
    inner = ",".join(f"{k}={strict_json.dumps(v) if isinstance(v, str) else v}" for k, v in sorted(params.items()))
    return f"{name}[{inner}]"


@dataclass
class Group:
    """All seeds of one (task, version, preset, configuration, strategy)."""

    task: str
    version: str
    preset: str
    config: Mapping[str, Any]
    strategy: str
    runs: list[Run] = field(default_factory=list)

    @property
    def setting(self) -> str:
        return f"{self.task} v{self.version} · preset {self.preset} · config {params_hash(self.config)}"

    def generations(self) -> int:
        """Generations every seed has reached (the curves are cut to the shortest)."""
        return min(len(run.records) for run in self.runs)

    def curves(self, metric: str = "loss") -> np.ndarray:
        g = self.generations()
        return np.array([[r["metrics"][metric] for r in run.records[:g]] for run in self.runs])

    def has_metric(self, metric: str) -> bool:
        g = self.generations()
        return all(all(metric in r["metrics"] for r in run.records[:g]) for run in self.runs)


def group_runs(runs: Sequence[Run]) -> list[Group]:
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        if not run.records:
            continue
        task, strategy = run.manifest["task"], run.manifest["strategy"]
        label = strategy_display(strategy["name"], strategy["params"])
        key = (task["name"], task["version"], task["preset"], params_hash(task["config"]), label)
        if key not in groups:
            groups[key] = Group(task["name"], task["version"], task["preset"], task["config"], label)
        groups[key].runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: r.seed)
    return sorted(groups.values(), key=lambda g: (g.setting, g.strategy))


def generation_table(group: Group) -> str:
    """One row per generation: loss mean ± std, its 95% CI, collapse ratio, theory if known."""
    losses = group.curves()
    ratios = np.array([scorer.collapse_ratios(curve) for curve in losses])
    theory = group.curves("theory_loss") if group.has_metric("theory_loss") else None
    rows = []
    for g in range(losses.shape[1]):
        loss = scorer.summarize(losses[:, g])
        ci = "" if loss.ci_low is None else f"[{loss.ci_low:.4g}, {loss.ci_high:.4g}]"
        row = [g, loss.format(), ci, scorer.summarize(ratios[:, g]).format(3)]
        if theory is not None:
            row.append(f"{theory[0, g]:.4g}")
        rows.append(row)
    headers = ["gen", "loss (mean ± std)", "95% CI", "L_g/L_0"] + (["theory"] if theory is not None else [])
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def summary_rows(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Per group: seeds, L_0, L_G, L_G/L_0 and the normalised score against replace (if present)."""
    replace = {g.setting: g for g in groups if g.strategy == "replace"}
    rows = []
    for group in groups:
        losses = group.curves()
        last = losses.shape[1] - 1
        row: dict[str, Any] = {
            "setting": group.setting,
            "strategy": group.strategy,
            "seeds": [run.seed for run in group.runs],
            "generations": last,
            "initial": scorer.summarize(losses[:, 0]),
            "final": scorer.summarize(losses[:, last]),
            "ratio": scorer.summarize(losses[:, last] / losses[:, 0]),
            "score": None,
        }
        base = replace.get(group.setting)
        if base is not None and base.generations() - 1 >= last:
            ours = {run.seed: run.curve() for run in group.runs}
            theirs = {run.seed: run.curve() for run in base.runs}
            scores = scorer.paired_scores(ours, theirs, last)
            row["score"] = scorer.summarize(scores) if scores else None
        rows.append(row)
    return rows


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    table = [
        [
            r["strategy"],
            len(r["seeds"]),
            r["generations"],
            r["initial"].format(),
            r["final"].format(),
            r["ratio"].format(3),
            "n/a" if r["score"] is None else r["score"].format(3),
        ]
        for r in rows
    ]
    headers = ["strategy", "seeds", "G", "L_0", "L_G", "L_G/L_0", "normalised score"]
    return tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)


def plot_setting(groups: Sequence[Group], path: Path) -> None:
    """Loss (mean and 95% bootstrap band over seeds) and collapse ratio per generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_ratio) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for index, group in enumerate(groups):
        color = colors(index % 10)
        for ax, curves in ((ax_loss, group.curves()), (ax_ratio, group.curves() / group.curves()[:, :1])):
            gens = np.arange(curves.shape[1])
            stats_ = [scorer.summarize(curves[:, g]) for g in gens]
            mean = np.array([s.mean for s in stats_])
            ax.plot(gens, mean, marker="o", ms=3, color=color, label=f"{group.strategy} (n={len(group.runs)})")
            if len(group.runs) > 1:
                low = np.array([s.ci_low for s in stats_])
                high = np.array([s.ci_high for s in stats_])
                ax.fill_between(gens, low, high, color=color, alpha=0.18, linewidth=0)
        if group.has_metric("theory_loss"):
            theory = group.curves("theory_loss")[0]
            ax_loss.plot(np.arange(len(theory)), theory, ls="--", color=color, lw=1, label=f"{group.strategy}: theory")
    first = groups[0]
    ax_loss.set_title(f"{first.task}: held-out loss (mean, 95% CI over seeds)")
    ax_loss.set_ylabel("loss (lower is better)")
    ax_ratio.set_title("collapse ratio L_g / L_0")
    ax_ratio.axhline(1.0, color="grey", lw=0.8, ls=":")
    for ax in (ax_loss, ax_ratio):
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.legend(fontsize=8)
    fig.suptitle(first.setting, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(runs: Sequence[Run], out: Path) -> tuple[str, list[Path]]:
    """The report text (tables) and the PNG/JSON files written under ``out``."""
    groups = group_runs(runs)
    if not groups:
        return "no generations recorded in these runs", []
    by_setting: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        by_setting[group.setting].append(group)
    sections, files = [], []
    summaries: list[dict[str, Any]] = []
    for setting, members in by_setting.items():
        sections.append(f"== {setting}")
        for group in members:
            seeds = ",".join(str(r.seed) for r in group.runs)
            sections.append(f"\n{group.strategy}  (seeds {seeds})\n{generation_table(group)}")
        rows = summary_rows(members)
        sections.append(f"\nsummary\n{summary_table(rows)}\n")
        summaries.extend(rows)
        first = members[0]
        png = out / f"report-{first.task}-{first.preset}-{params_hash(first.config)}.png"
        plot_setting(members, png)
        files.append(png)
    data = [
        {k: (v.as_dict() if isinstance(v, scorer.Summary) else v) for k, v in row.items()} for row in summaries
    ]
    summary_path = out / "report.json"
    atomic_write_text(summary_path, strict_json.dumps({"summary": data}, indent=2) + "\n")
    files.append(summary_path)
    return "\n".join(sections), files
