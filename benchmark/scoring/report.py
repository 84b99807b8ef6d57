"""Reports over run directories: per-generation tables (mean ± std over seeds, collapse
ratios, Student-t CIs), a summary with the normalised score, and PNG plots of the curves.

A report's files are named by the sha256 of their content (:func:`content_key`), so a new
report never overwrites an earlier one and the same runs always give the same files."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from collapselab.engine.identity import params_hash
from collapselab.engine.rundir import Run
from collapselab.scoring import plots, profile, scorer
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
    entry: str | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def setting(self) -> str:
        return f"{self.task} v{self.version} · preset {self.preset} · config {params_hash(self.config)}"

    def generations(self) -> int:
        """Generations every seed has reached (the curves are cut to the shortest)."""
        return min(len(run.records) for run in self.runs)

    def curves(self, metric: str = "loss") -> np.ndarray:
        g = self.generations()
        return np.array([[r.metrics[metric] for r in run.records[:g]] for run in self.runs])

    def has_metric(self, metric: str) -> bool:
        g = self.generations()
        return all(all(metric in r.metrics for r in run.records[:g]) for run in self.runs)


def group_runs(runs: Sequence[Run]) -> list[Group]:
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        if not run.records:
            continue
        task, strategy = run.manifest.task, run.manifest.strategy
        label = strategy_display(strategy.name, strategy.params)
        if run.entry is not None and run.entry != label:
            label = f"{label} (entry {run.entry})"  # two entries or local runs of one strategy stay apart
        key = (task.name, task.version, task.preset, params_hash(task.config), label)
        if key not in groups:
            groups[key] = Group(task.name, task.version, task.preset, task.config, label, run.entry)
        groups[key].runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: r.seed)
    return sorted(groups.values(), key=lambda g: (g.setting, g.strategy))


def generation_table(group: Group) -> str:
    """One row per generation: loss mean ± std, its 95% CI, collapse ratio, theory if known."""
    losses = group.curves()
    ratios = np.array([scorer.collapse_ratios(curve) for curve in losses])
    theory = theory_curve(group)
    rows = []
    for g in range(losses.shape[1]):
        loss = scorer.summarize(losses[:, g])
        ci = "" if loss.ci_low is None else f"[{loss.ci_low:.4g}, {loss.ci_high:.4g}]"
        row = [g, loss.format(), ci, scorer.summarize(ratios[:, g]).format(3)]
        if theory is not None:
            row.append(f"{theory[g]:.4g}")
        rows.append(row)
    headers = ["gen", "loss (mean ± std)", "95% CI", "L_g/L_0"] + (["theory"] if theory is not None else [])
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def summary_rows(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Per group: seeds, L_0, L_G, L_G/L_0, the score over the whole curve against replace
    (:func:`collapselab.scoring.scorer.paired_score`, paired by seed; if replace is in the report),
    and from the records the track, the extra-compute flag and the synthetic share."""
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
            "track": scorer.track(run.records for run in group.runs),
            "extra_compute": any(scorer.uses_extra_compute(run.records) for run in group.runs),
            "synthetic_share": _mean_share([scorer.synthetic_share(run.records) for run in group.runs]),
        }
        base = replace.get(group.setting)
        if base is not None and base.generations() - 1 >= last:
            ours = {run.seed: run.curve()[: last + 1] for run in group.runs}
            theirs = {run.seed: run.curve()[: last + 1] for run in base.runs}
            row["score"] = scorer.paired_score(ours, theirs)
        rows.append(row)
    return rows


def group_profile(group: Group) -> profile.Profile:
    """The collapse profile of a group's seeds (:mod:`collapselab.scoring.profile`)."""
    g = group.generations()
    name = group.runs[0].manifest.strategy.name
    return profile.profile({run.seed: run.records[:g] for run in group.runs}, group.task, name)


def profile_table(groups: Sequence[Group]) -> str:
    """One row per strategy, one column per definition: verdict (value [95% interval])."""
    measured = [(group.strategy, group_profile(group)) for group in groups]
    rows = [[strategy, *(found.fields[name].text() for name in profile.DEFINITIONS)] for strategy, found in measured]
    table = tabulate(rows, headers=["strategy", *profile.DEFINITIONS], tablefmt="simple", disable_numparse=True)
    rules = "\n".join(f"  {name}: {measured[0][1].fields[name].measure}; {measured[0][1].fields[name].rule}"
                       for name in profile.DEFINITIONS) if measured else ""
    return f"{table}\nrules (first strategy's measures):\n{rules}"


def _mean_share(shares: Sequence[float | None]) -> float | None:
    present = [s for s in shares if s is not None]
    return float(np.mean(present)) if present else None


def _as_json(value: Any) -> Any:
    """A summary or score as strict-JSON data (an infinite standard error, one seed, as null)."""
    if isinstance(value, scorer.Summary | scorer.Score):
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in value.as_dict().items()}
    return value


def _score_text(score: scorer.Score | None) -> str:
    if score is None:
        return "n/a"
    if score.ci_low is None or score.ci_high is None:
        return f"{score.mean:.3f} [unbounded]"
    return f"{score.mean:.3f} [{score.ci_low:.3f}, {score.ci_high:.3f}]"


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    table = [
        [
            r["strategy"],
            len(r["seeds"]),
            r["generations"],
            r["initial"].format(),
            r["final"].format(),
            r["ratio"].format(3),
            _score_text(r["score"]),
            r["track"] + (" +compute" if r["extra_compute"] else ""),
            "n/a" if r["synthetic_share"] is None else f"{100 * r['synthetic_share']:.0f}%",
        ]
        for r in rows
    ]
    headers = ["strategy", "seeds", "G", "L_0", "L_G", "L_G/L_0", "score [95% CI]", "track", "synthetic share"]
    return tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)


def band(curves: np.ndarray) -> dict[str, list[float | None]]:
    """Mean and 95% Student-t interval per generation of ``curves`` (seeds x generations)."""
    stats_ = [scorer.summarize(curves[:, g].tolist()) for g in range(curves.shape[1])]
    return {"mean": [s.mean for s in stats_], "low": [s.ci_low for s in stats_], "high": [s.ci_high for s in stats_]}


def theory_curve(group: Group) -> np.ndarray | None:
    """The mean over seeds of the recorded ``theory_loss`` (each seed has its own design, so its own
    theory; the mean is what the mean loss beside it should follow), or ``None``."""
    if not group.has_metric("theory_loss"):
        return None
    return np.mean(group.curves("theory_loss"), axis=0)


def group_bands(group: Group) -> dict[str, Any]:
    """The curves one group plots: loss and L_g/L_0 bands over seeds, and the theory curve if any."""
    losses = group.curves()
    found: dict[str, Any] = {"loss": band(losses), "ratio": band(losses / losses[:, :1])}
    theory = theory_curve(group)
    if theory is not None:
        found["theory"] = [float(v) for v in theory]
    return found


def plot_setting(groups: Sequence[Group], bands: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Loss (mean and 95% t interval over seeds) and collapse ratio per generation, one
    colour per strategy; logarithmic where the curves span a decade (:mod:`collapselab.scoring.plots`)."""
    palette = plots.colours([g.strategy for g in groups])
    loss, ratio = [], []
    for group, curves in zip(groups, bands):
        label = f"{group.strategy} (n={len(group.runs)})"
        loss.append(plots.Series(label, palette[group.strategy], curves["loss"]))
        ratio.append(plots.Series(label, palette[group.strategy], curves["ratio"]))
        if "theory" in curves:
            loss.append(plots.Series(f"{group.strategy}: theory", palette[group.strategy], {"mean": curves["theory"]},
                                     dashed=True, markers=False))
    first = groups[0]
    plots.curves_figure(first.task, "loss", loss, ratio, path, log=True, subtitle=first.setting)


def content_key(data: Any) -> str:
    """A short sha256 of ``data``'s canonical JSON: the name of a report, so that a report
    never replaces another (the same runs give the same name and the same bytes)."""
    return hashlib.sha256(strict_json.dumps(data, indent=0).encode()).hexdigest()[:12]


def build_report(runs: Sequence[Run], out: Path) -> tuple[str, list[Path]]:
    """The report text (tables) and the files written under ``out``: ``report-<key>.json`` and
    one ``report-<key>-<task>-<preset>-<config>.png`` per setting, ``key`` naming the content."""
    groups = group_runs(runs)
    if not groups:
        return "no generations recorded in these runs", []
    by_setting: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        by_setting[group.setting].append(group)
    sections: list[str] = []
    summaries: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for setting, members in by_setting.items():
        sections.append(f"== {setting}")
        for group in members:
            seeds = ",".join(str(r.seed) for r in group.runs)
            sections.append(f"\n{group.strategy}  (seeds {seeds})\n{generation_table(group)}")
        rows = summary_rows(members)
        for row, group in zip(rows, members):
            row["profile"] = group_profile(group).as_dict()
        sections.append(f"\nsummary\n{summary_table(rows)}\n")
        sections.append(f"collapse profile (Schaeffer et al. 2025; verdict (value [95% CI]))\n{profile_table(members)}\n")
        summaries.extend(rows)
        curves.extend({"setting": setting, "strategy": g.strategy, "seeds": [r.seed for r in g.runs], **group_bands(g)}
                      for g in members)
    data = {
        "summary": [{k: _as_json(v) for k, v in row.items()} for row in summaries],
        "curves": curves,
    }
    key = content_key(data)
    files = []
    for setting, members in by_setting.items():
        first = members[0]
        png = out / f"report-{key}-{first.task}-{first.preset}-{params_hash(first.config)}.png"
        plot_setting(members, [c for c in curves if c["setting"] == setting], png)
        files.append(png)
    summary_path = out / f"report-{key}.json"
    atomic_write_text(summary_path, strict_json.dumps(data, indent=2) + "\n")
    files.append(summary_path)
    return "\n".join(sections), files
