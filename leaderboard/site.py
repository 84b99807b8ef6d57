"""``collapselab leaderboard build``: submissions -> a static website.

Reads the JSON files only (never imports or runs submitted code), validates all of them,
aggregates (:mod:`leaderboard.aggregate`) and writes::

    index.html                  overall tables (standard and extra-real-data tracks)
    task-<task>.html            per task: curves, entries, secondary metrics
    img/<task>-loss.png, img/<task>-metrics.png
    static/style.css, static/sort.js
    data/leaderboard.json       the numbers the pages show
    data/submissions/*.json     the submission files, byte for byte
    data/submission.schema.json

Every text from a submission goes through Jinja's autoescaping, links must be http(s), and a
Content-Security-Policy allows only the site's own script. The site works opened from disk.
The build writes into a temporary folder and then replaces the output folder, which must be
new, empty, or a previous build (it holds ``.collapselab-site``): the same submissions
give byte-identical files.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.leaderboard import SUBMISSIONS, aggregate, rules, validate
from collapselab.operations import submission
from collapselab.scoring import plots
from collapselab.storage import strict_json

HERE = Path(__file__).resolve().parent
MARKER = ".collapselab-site"


def _sig(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _dv(value: float | None) -> str:
    """A sort key for a data-value attribute (full precision, '' for missing)."""
    return "" if value is None else repr(float(value))


def _pm(summary: Mapping[str, Any]) -> str:
    std = summary.get("std")
    return _sig(summary["mean"]) + ("" if std is None else f" ± {std:.2g}")


def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(sig=_sig, fixed=_fixed, pct=_pct, dv=_dv, pm=_pm, times=_times)
    return env


def _version() -> str:
    try:
        return importlib.metadata.version("collapselab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _write(path: Path, text: str) -> None:
    """Plain writes: the whole site is built in a temporary folder that replaces the old one at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _prepare(out: Path) -> Path:
    """A fresh temporary folder beside ``out``; refuses an ``out`` that is not a previous build."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise CollapseLabError(f"{out} exists and is not a leaderboard build; choose a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    return tmp


def _render(board: Mapping[str, Any], entries: Mapping[str, Any], sources: Mapping[str, Path], tmp: Path) -> None:
    env = environment()
    common = {"board": board, "version": _version()}
    standard = [e for e in board["entries"] if e["track"] == "standard"]
    extra = [e for e in board["entries"] if e["track"] != "standard"]
    _write(tmp / "index.html", env.get_template("index.html").render(standard=standard, extra=extra, **common))
    palette = plots.colours([e["name"] for e in board["entries"]])
    for task in board["tasks"]:
        rows = [e for e in board["entries"] if task["name"] in e["tasks"]]
        rows.sort(key=lambda e: -(e["tasks"][task["name"]]["score"] or {"mean": -float("inf")})["mean"])
        plots.loss_figure(task, rows, palette, tmp / "img" / f"{task['name']}-loss.png")
        metrics = plots.metrics_figure(task, rows, palette, tmp / "img" / f"{task['name']}-metrics.png")
        page = env.get_template("task.html").render(task=task, rows=rows, metrics=metrics, **common)
        _write(tmp / f"task-{task['name']}.html", page)
    for name in ("style.css", "sort.js"):
        (tmp / "static").mkdir(exist_ok=True)
        shutil.copyfile(HERE / "static" / name, tmp / "static" / name)
    data = tmp / "data"
    (data / "submissions").mkdir(parents=True)
    _write(data / "leaderboard.json", strict_json.dumps(board, indent=1) + "\n")
    _write(data / "submission.schema.json", strict_json.dumps(submission.SUBMISSION_SCHEMA, indent=1) + "\n")
    for name in sorted(entries):
        shutil.copyfile(sources[name], data / "submissions" / f"{name}.json")
    (tmp / MARKER).write_text("built by collapselab leaderboard build\n")


def build(
    out: Path, submissions: Path = SUBMISSIONS, policy: rules.Rules = rules.LEADERBOARD, skip_invalid: bool = False
) -> dict[str, Any]:
    """Validate every submission in ``submissions`` and write the site to ``out``; returns the board.

    Invalid files stop the build, all of them reported at once, and the old site stays; with
    ``skip_invalid`` the site is built without them and lists them with their problems."""
    entries, problems = validate.load_entries(submissions, policy)
    if problems and not skip_invalid:
        raise SubmissionError(problems)
    if not entries:
        raise CollapseLabError(f"no valid submissions (*.json) in {submissions}")
    board = aggregate.aggregate(entries)
    board["excluded"] = validate.invalid_files(Path(submissions), problems)
    tmp = _prepare(out)
    try:
        _render(board, entries, {name: Path(submissions) / f"{name}.json" for name in entries}, tmp)
        if Path(out).exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return board
