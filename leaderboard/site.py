"""``collapselab leaderboard build``: submissions -> a static website.

Reads the JSON files only (never imports or runs submitted code), validates all of them and
their galleries, aggregates (:mod:`collapselab.leaderboard.aggregate`) and writes::

    index.html                  how to read the board, one table per track, the overview figure,
                                the tasks with their gates
    task-<task>.html            per task: the gate's verdict, curves, entries, the entries without
                                runs there, score against synthetic share, secondary metrics, samples
    img/overview[-log].png      every task's collapse ratio on one axis per entry
    img/<task>-loss[-log].png, img/<task>-metrics[-log].png   (-log: where curves span decades)
    img/<task>-share.png        score against synthetic share (augmentation entries and the ceiling)
    img/gallery/<entry>/<task>-<generation>-<k>.png          the entries' sample images
    static/style.css, static/sort.js
    data/leaderboard.json       the numbers the pages show
    data/scores.csv             the scores as a table, one row per entry and task (:mod:`collapselab.leaderboard.scores_csv`)
    data/submissions/*.json     the submission files, byte for byte
    data/submission.schema.json, data/gallery.schema.json

Tracks: the tables follow ``board["tracks"]`` when the board lists them (objects with ``name``,
``references``, ``ranked``, ``partial``, ``best`` and ``description``), else the tracks of the
entries in board order. The board's reference rows head every table, unranked, with their badge
(``denominator``: replace, score 0; ``ceiling``: no synthetic item trained on); its ranked entries
show their rank band (:mod:`collapselab.leaderboard.standing`); its partial entries follow with
per-task scores and no rank. Per task, the table's best entry is marked (and those tied with it),
and a missing task reads "not applicable" (the entry cannot run there:
:mod:`collapselab.leaderboard.applicability`) or "not run". Every row shows its synthetic share and
the extra-compute flag. Each entry has one colour and marker (:mod:`collapselab.scoring.styles`)
on every figure and as an SVG swatch beside its name, the same in every build.

Every page shows each entry's provenance (:mod:`collapselab.leaderboard.provenance`), each task page
its entries' collapse profiles (:mod:`collapselab.leaderboard.profile_view`) and the index a strip of
them per entry and task; the footer links the repository's README and its "how to submit" section
(``readme``: a relative path or an http(s) address, by default ``../README.md``, the checkout's README
beside a site built into ``site/``).

Every text from a submission or gallery goes through Jinja's autoescaping, links must be http(s),
gallery images are validated PNGs written under names the builder makes, and a
Content-Security-Policy allows only the site's own script, style and images. The site works
opened from disk. The build writes into a temporary folder and then replaces the output folder,
which must be new, empty, or a previous build (it holds ``.collapselab-site``). The same
submissions give byte-identical files: the build date on every page is the newest run's
``timings.updated`` in the submissions (or ``date`` when given), never the clock.
"""

from __future__ import annotations

import importlib.metadata
import io
import math
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collapselab.errors import CollapseLabError, ParameterError, SubmissionError
from collapselab.formats import gallery, submission
from collapselab.leaderboard import README, SUBMISSIONS, aggregate, profile_view, rules, scores_csv, standing, validate
from collapselab.scoring import plots, scorer, styles
from collapselab.storage import schema, strict_json
from collapselab.storage.atomic import default_mode

HERE = Path(__file__).resolve().parent
MARKER = ".collapselab-site"
#: Entries drawn on the overview figure (board order); the tables list every entry.
OVERVIEW_ROWS = 40
#: Entries drawn on a task's figures (the best on the task, besides the reference).
CURVES_SHOWN = 10
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SUBMIT_ANCHOR = "#submit-a-strategy"


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


def _band(band: Sequence[int] | None) -> str:
    return "" if band is None else standing.band_text((int(band[0]), int(band[1])))


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
    env.filters.update(sig=_sig, fixed=_fixed, pct=_pct, dv=_dv, pm=_pm, times=_times, band=_band)
    env.globals.update(style=styles.style, polygons=SWATCH_POLYGONS, task_mark=task_mark, missing_cell=missing_cell,
                       profile_cells=profile_view.cells, profile_summary=profile_view.summary,
                       min_timed=aggregate.MIN_TIMED_FIT_SECONDS)
    return env


def _version() -> str:
    try:
        return importlib.metadata.version("collapselab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_date(entries: Mapping[str, Mapping[str, Any]], date: str | None = None) -> str:
    """``date`` (YYYY-MM-DD) if given, else the day of the newest ``timings.updated`` of the entries' runs."""
    if date is not None:
        if not DATE.match(date):
            raise ParameterError(f"--date must look like 2025-01-31, got {date!r}")
        return date
    stamps = [str(run["manifest"]["timings"].get("updated", "")) for entry in entries.values()
              for section in entry["tasks"].values() for run in section["runs"]]
    days = [stamp[:10] for stamp in stamps if DATE.match(stamp[:10])]
    return max(days) if days else "unknown date"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def tables(board: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The overall tables, one per track (and compute flag) in board order: its reference rows
    (unranked), its ranked entries, then its entries that cover only some of the ranked tasks
    (per-task scores, no overall rank), and per task its best entries (``best``).

    Tracks and their members come from ``board["tracks"]`` (``name``, ``references``, ``ranked``
    and ``partial`` entry names, optionally ``description`` and ``best``); a board without it is
    read from the entries' ``track`` and ``rank`` fields."""
    by_name = {e["name"]: e for e in board["entries"]}
    listed = board.get("tracks") or [
        {"name": name, "ranked": [e["name"] for e in board["entries"] if e["track"] == name and e.get("rank") is not None],
         "partial": [e["name"] for e in board["entries"] if e["track"] == name and e.get("rank") is None]}
        for name in dict.fromkeys(e["track"] for e in board["entries"])
    ]
    found: list[dict[str, Any]] = []
    for track in listed:
        rows = [by_name[name] for name in track.get("references", []) + track["ranked"] + track["partial"]]
        if rows:
            found.append({"id": f"track-{_slug(track['name'])}", "title": f"{track['name'].capitalize()} track",
                          "home": [e["name"] for e in rows if _table_name(e) == track["name"]],
                          "note": track.get("description") or scorer.TRACK_DESCRIPTIONS.get(track["name"], ""), "rows": rows,
                          "ranked": bool(track["ranked"]), "partial": len(track["partial"]), "best": track.get("best", {})})
    for table in found:
        table["extra_real"] = any((e.get("extra_real_fraction") or 0) > 0 for e in table["rows"])
        table["extra_compute"] = any((e.get("budget_ratio") or 0) > 1 + 1e-6 for e in table["rows"])
    return found


def task_mark(table: Mapping[str, Any], task: str, name: str) -> str | None:
    """``best`` or ``tied`` when ``name`` is the best entry of ``table`` on ``task`` or tied with it, else ``None``."""
    marks = table.get("best", {}).get(task, {})
    return "best" if name in marks.get("best", ()) else "tied" if name in marks.get("tied", ()) else None


def task_marks(board: Mapping[str, Any], task: str) -> dict[str, str]:
    """entry name -> ``best`` or ``tied`` on ``task`` within its own track table (entries without a mark left out)."""
    marks: dict[str, str] = {}
    for table in board.get("tracks", []):
        found = table.get("best", {}).get(task, {})
        marks.update({name: "tied" for name in found.get("tied", ())})
        marks.update({name: "best" for name in found.get("best", ())})
    return marks


def missing_cell(entry: Mapping[str, Any], task: str) -> tuple[str, str]:
    """Why ``entry`` has no numbers on ``task``: ("not-applicable", the reason) or ("not-run", a sentence)."""
    reason = entry.get("not_applicable", {}).get(task)
    if reason is not None:
        return "not-applicable", reason
    return "not-run", f"{entry['name']} has no runs on {task} in its submission (nothing the board can check says it cannot run there)"


def _polygon(corners: int, radius: float = 4.5, turn: float = -90.0, inner: float | None = None) -> str:
    """SVG points of a regular polygon (or a star, with ``inner`` radius) centred in a 10 x 10 box."""
    count = corners * (2 if inner else 1)
    points = []
    for index in range(count):
        r = inner if inner and index % 2 else radius
        angle = math.radians(turn + 360.0 * index / count)
        points.append(f"{5 + r * math.cos(angle):.2f},{5 + r * math.sin(angle):.2f}")
    return " ".join(points)


_PLUS = [(3.6, 1), (6.4, 1), (6.4, 3.6), (9, 3.6), (9, 6.4), (6.4, 6.4), (6.4, 9), (3.6, 9), (3.6, 6.4), (1, 6.4), (1, 3.6),
         (3.6, 3.6)]


def _rotated(points: Sequence[tuple[float, float]], degrees: float) -> str:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return " ".join(f"{5 + c * (x - 5) - s * (y - 5):.2f},{5 + s * (x - 5) + c * (y - 5):.2f}" for x, y in points)


#: The SVG polygon of each marker of :data:`styles.MARKERS` ("o" is a circle), for the pages' swatches.
SWATCH_POLYGONS = {
    "s": _polygon(4, 5.5, 45), "^": _polygon(3, 4.8), "v": _polygon(3, 4.8, 90), "<": _polygon(3, 4.8, 180),
    ">": _polygon(3, 4.8, 0), "D": _polygon(4, 4.8, 0), "p": _polygon(5), "h": _polygon(6), "*": _polygon(5, 5, inner=2.1),
    "P": _rotated(_PLUS, 0), "X": _rotated(_PLUS, 45),
}


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
    tmp.chmod(default_mode(directory=True))
    return tmp


# ---------------------------------------------------------------- figures
def _figure_pair(draw: Any, panels: Sequence[Sequence[plots.Series]], path: Path) -> dict[str, Any]:
    """Draw the linear figure and, where a panel's curves span decades, the logarithmic one; returns both names."""
    draw(path, False)
    found = {"src": f"img/{path.name}", "log": None}
    if any(plots.spans_decades(series) for series in panels):
        log = path.with_name(path.stem + "-log.png")
        draw(log, True)
        found["log"] = f"img/{log.name}"
    return found


def figure_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries a task's figures draw (``rows``: best first): the :data:`CURVES_SHOWN` best and
    the reference entries. Every entry is in the task's table and its curves in the site's data."""
    return [row for index, row in enumerate(rows) if index < CURVES_SHOWN or row["reference"]]


def _task_figures(task: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], img: Path) -> dict[str, Any]:
    """The task's figures, of its best entries (:func:`figure_rows`): the same few curves whatever the number of entries."""
    name = task["name"]
    shown = figure_rows(rows)

    def series(curve: str) -> list[plots.Series]:
        return [plots.Series(f"{e['name']} (n={len(e['tasks'][name]['seeds'])})", styles.style(e["name"]).colour,
                             e["tasks"][name][curve], dashed=bool(e.get("extra_compute")), marker=styles.style(e["name"]).marker)
                for e in shown]

    loss, ratio = series("curve"), series("ratio_curve")
    figures: dict[str, Any] = {"loss": _figure_pair(lambda path, log: plots.curves_figure(name, task["loss_unit"], loss, ratio, path, log),
                                    [loss, ratio], img / f"{name}-loss.png"),
                               "shown": [e["name"] for e in shown], "total": len(rows)}
    figures["metric_names"] = sorted({m for e in rows for m in e["tasks"][name]["metrics"]})
    metrics = {
        metric: [plots.Series(e["name"], styles.style(e["name"]).colour, e["tasks"][name]["metrics"][metric]["curve"],
                              dashed=bool(e.get("extra_compute")), marker=styles.style(e["name"]).marker)
                 for e in shown if metric in e["tasks"][name]["metrics"]]
        for metric in figures["metric_names"]
    }
    metrics = {metric: series_ for metric, series_ in metrics.items() if series_}
    if metrics:
        figures["metrics"] = _figure_pair(lambda path, log: plots.metrics_figure(metrics, path, log),
                                          list(metrics.values()), img / f"{name}-metrics.png")
    figures["share"] = _share_figure(task, rows, img)
    figures["cost"] = _cost_figure(task, rows, img)
    return figures


SHARE_RULE = ("An entry is on the frontier (ringed, joined by a dashed line) when no other entry of its compute flag has "
              "a score at least as high with a synthetic share at least as high, one of them strictly higher: for each "
              "amount of synthetic data, the best score reached with at least that much. Means are compared; shares within "
              f"{100 * standing.SHARE_TOLERANCE:.0f} percentage point count as equal.")


def _share_figure(task: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], img: Path) -> dict[str, Any] | None:
    """Score against synthetic share of the task's augmentation entries and its ceiling, beside the fresh
    data loop's entries (a dose of new real data each; None: no augmentation entry scored)."""
    name = task["name"]

    def point(entry: Mapping[str, Any]) -> plots.Point | None:
        row = entry["tasks"][name]
        if row["score"] is None or row["synthetic_share"] is None:
            return None
        style = styles.style(entry["name"])
        label = entry["name"] + (" (ceiling)" if entry["reference_kind"] == "ceiling" else "") + (
            ", extra compute" if row["extra_compute"] else "")
        return plots.Point(label, style.colour, style.marker, row["synthetic_share"], row["score"]["mean"],
                           row["score"]["ci_low"], row["score"]["ci_high"], entry["name"] in task.get("frontier", ()),
                           hollow=bool(row["extra_compute"]))

    augmentation = [e for e in rows if e["tasks"][name]["track"] == scorer.AUGMENTATION]
    points = [p for e in augmentation if not e["reference"] for p in [point(e)] if p is not None]
    ceilings = [p for e in augmentation if e["reference_kind"] == "ceiling" for p in [point(e)] if p is not None]
    if not points:
        return None
    fresh = {e["name"]: p for e in rows if e["tasks"][name]["track"] == scorer.FRESH_DATA and not e["reference"]
             for p in [point(e)] if p is not None}
    path = img / f"{name}-share.png"
    plots.share_figure(name, points, ceilings, path, fresh=list(fresh.values()))
    return {"src": f"img/{path.name}", "log": None, "frontier": [e["name"] for e in augmentation if e["name"] in task.get("frontier", ())],
            "ceilings": [e["name"] for e in augmentation if e["reference_kind"] == "ceiling" and point(e) is not None],
            "fresh": sorted(fresh)}


COST_RULE = ("An entry is on its track's cost frontier (ringed, joined by a line) when no other entry of the track has a score "
             "at least as high for a time at most as high, one of them strictly: for each budget, the best score reached within it. "
             f"Times within {100 * standing.COST_TOLERANCE:.0f}% of each other count as equal (measured times vary a little).")


def _cost_figure(task: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], img: Path) -> dict[str, Any] | None:
    """Score against time relative to replace of the task's scored entries (None: no entry has both)."""
    name = task["name"]
    fronts = task.get("cost_frontier", {})

    def point(entry: Mapping[str, Any]) -> plots.Point | None:
        row = entry["tasks"][name]
        time = row["cost"]["time_units_ratio"]
        if row["score"] is None or time is None:
            return None
        style = styles.style(entry["name"])
        label = entry["name"] + (", extra compute" if row["extra_compute"] else "")
        return plots.Point(label, style.colour, style.marker, time, row["score"]["mean"], row["score"]["ci_low"],
                           row["score"]["ci_high"], entry["name"] in fronts.get(row["track"], ()), hollow=bool(row["extra_compute"]))

    points: dict[str, list[plots.Point]] = {}
    for entry in rows:
        found = None if entry["reference_kind"] == "denominator" else point(entry)
        if found is not None:
            points.setdefault(entry["tasks"][name]["track"], []).append(found)
    if not points:
        return None
    reference = next((point(e) for e in rows if e["reference_kind"] == "denominator"), None)
    path = img / f"{name}-cost.png"
    plots.cost_figure(name, points, reference, path)
    return {"src": f"img/{path.name}", "log": None,
            "frontier": "; ".join(f"{track}: {', '.join(names)}" for track, names in sorted(fronts.items()) if names)}


def _overview_cell(entry: Mapping[str, Any], task: str) -> tuple[float, float | None, float | None] | str:
    row = entry["tasks"].get(task)
    if row is None:
        return "not applicable" if task in entry.get("not_applicable", {}) else "not run"
    if row["score"] is None:
        return "unscored"
    return row["score"]["mean"], row["score"]["ci_low"], row["score"]["ci_high"]


def _overview(board: Mapping[str, Any], img: Path) -> dict[str, Any]:
    """The forest plot of every entry's score per task (the first :data:`OVERVIEW_ROWS` entries in board order)."""
    tasks = [t["name"] for t in board["tasks"]]
    rows = []
    for entry in board["entries"][:OVERVIEW_ROWS]:
        style = styles.style(entry["name"])
        label = entry["name"] + (" (reference)" if entry["reference"] else "")
        rows.append(plots.Row(label, style.colour, style.marker, _table_name(entry), {t: _overview_cell(entry, t) for t in tasks},
                              hollow=bool(entry.get("extra_compute"))))
    path = img / "overview.png"
    plots.overview_figure(tasks, rows, path)
    return {"src": f"img/{path.name}", "log": None, "shown": len(rows), "total": len(board["entries"])}


def _table_name(entry: Mapping[str, Any]) -> str:
    """An entry's own table (its track and compute flag); a reference row is also shown in the other
    tables, where its row gets an id of that table's, so that ``entry-NAME`` is one row per page."""
    return aggregate.table_name(str(entry["track"]), bool(entry.get("extra_compute")))


# ---------------------------------------------------------------- galleries
def load_galleries(entries: Mapping[str, Mapping[str, Any]], submissions: Path) -> tuple[dict[str, Any], validate.Problems]:
    """entry name -> its validated gallery (entries without one are left out), and the problems of
    invalid ones by gallery file."""
    found: dict[str, Any] = {}
    problems: validate.Problems = {}
    for name, entry in sorted(entries.items()):
        try:
            data = gallery.read_for(Path(submissions) / f"{name}.json", entry)
        except SubmissionError as exc:
            problems[str(gallery.path_for(Path(submissions) / f"{name}.json"))] = list(exc.problems)
            continue
        if data is not None:
            found[name] = data
    return found, problems


def _gallery_pages(galleries: Mapping[str, Any], img: Path) -> dict[str, dict[str, Any]]:
    """task -> entry -> {seed, items}; the images are written under ``img/gallery/`` (names from validated fields)."""
    from PIL import Image

    pages: dict[str, dict[str, Any]] = {}
    for name, data in sorted(galleries.items()):
        for task, section in sorted(data["tasks"].items()):
            items = []
            for item in section["generations"]:
                images = []
                for index, image in enumerate(item.get("images", [])):
                    png = gallery.decode_png(image["png"])
                    file = img / "gallery" / name / f"{task}-{item['generation']:04d}-{index}.png"
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_bytes(png)
                    with Image.open(io.BytesIO(png)) as opened:
                        width, height = opened.size
                    images.append({"src": f"img/gallery/{name}/{file.name}", "caption": image["caption"],
                                   "width": width, "height": height})
                items.append({"generation": item["generation"], "images": images, "texts": item.get("texts", [])})
            pages.setdefault(task, {})[name] = {"seed": section["seed"], "items": items}
    return pages


# ---------------------------------------------------------------- pages
def readme_link(readme: str) -> str:
    """``readme`` if it is an http(s) address or a relative path without a scheme, else a :class:`ParameterError`."""
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", readme)
    if not readme or any(c in readme for c in "\"<>\\ \n\r\t") or (scheme and scheme.group(1).lower() not in ("http", "https")):
        raise ParameterError(f"--readme must be an http(s) address or a relative path, got {readme!r}")
    return readme.split("#")[0]


def _render(board: Mapping[str, Any], entries: Mapping[str, Any], sources: Mapping[str, Path],
            galleries: Mapping[str, Any], tmp: Path, date: str, readme: str = README) -> None:
    env = environment()
    common = {"board": board, "version": _version(), "built": date, "readme": readme, "submit_anchor": SUBMIT_ANCHOR}
    img = tmp / "img"
    overview = _overview(board, img)
    _write(tmp / "index.html", env.get_template("index.html").render(tables=tables(board), overview=overview, **common))
    samples = _gallery_pages(galleries, img)
    for task in board["tasks"]:
        rows = [e for e in board["entries"] if task["name"] in e["tasks"]]
        rows.sort(key=lambda e: (-(e["tasks"][task["name"]]["score"] or {"mean": -float("inf")})["mean"], e["name"]))
        figures = _task_figures(task, rows, img)
        absent = [e for e in board["entries"] if task["name"] not in e["tasks"]]
        page = env.get_template("task.html").render(task=task, rows=rows, figures=figures, absent=absent,
                                                    task_marks=task_marks(board, task["name"]), share_rule=SHARE_RULE, cost_rule=COST_RULE,
                                                    profile=profile_view.table(rows, task["name"]),
                                                    samples=samples.get(task["name"], {}), **common)
        _write(tmp / f"task-{task['name']}.html", page)
    for name in ("style.css", "sort.js"):
        (tmp / "static").mkdir(exist_ok=True)
        shutil.copyfile(HERE / "static" / name, tmp / "static" / name)
    data = tmp / "data"
    (data / "submissions").mkdir(parents=True)
    _write(data / "leaderboard.json", strict_json.dumps(board, indent=1) + "\n")
    (data / "scores.csv").write_text(scores_csv.render(board), encoding="utf-8", newline="")
    _write(data / "submission.schema.json", strict_json.dumps(submission.SUBMISSION_SCHEMA, indent=1) + "\n")
    _write(data / "gallery.schema.json", strict_json.dumps(gallery.GALLERY_SCHEMA, indent=1) + "\n")
    for name in sorted(entries):
        shutil.copyfile(sources[name], data / "submissions" / f"{name}.json")
    (tmp / MARKER).write_text("built by collapselab leaderboard build\n")


def build(
    out: Path,
    submissions: Path = SUBMISSIONS,
    policy: rules.Rules = rules.LEADERBOARD,
    skip_invalid: bool = False,
    date: str | None = None,
    readme: str = README,
) -> dict[str, Any]:
    """Validate every submission (and gallery) in ``submissions`` and write the site to ``out``; returns the board.

    Invalid files stop the build, all of them reported at once, and the old site stays; with
    ``skip_invalid`` the site is built without them (an invalid gallery: without the gallery)
    and lists them with their problems. ``readme``: where the footer's README links point (:func:`readme_link`)."""
    readme = readme_link(readme)
    # the files are read once and never changed: each is checked and its numbers computed once
    with schema.remembering(), aggregate.reusing_rows():
        entries, problems = validate.load_entries(submissions, policy)
        galleries, gallery_problems = load_galleries(entries, submissions)
        problems |= gallery_problems
        if problems and not skip_invalid:
            raise SubmissionError(validate.flat(problems))
        if not entries:
            raise CollapseLabError(f"no valid submissions (*.json) in {submissions}")
        built = build_date(entries, date)
        board = aggregate.aggregate(entries)
    board["excluded"] = validate.invalid_files(Path(submissions), problems)
    tmp = _prepare(out)
    try:
        _render(board, entries, {name: Path(submissions) / f"{name}.json" for name in entries}, galleries, tmp, built, readme)
        if Path(out).exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return board
