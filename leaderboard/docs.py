"""The numbers in the README and the task cards, generated from the committed entries.

    collapselab leaderboard docs --write    # rewrite every generated region from the entries
    collapselab leaderboard docs --check    # exit 1 when a region differs from what the entries say

(also ``python -m collapselab.leaderboard.docs``). ``README.md`` and ``tasks/*/README.md`` under
``--root`` (default: the current folder, a checkout) hold regions between two marker comments::

    <!-- collapselab:table scores task=linear_regression -->
    ...generated, never edited by hand...
    <!-- /collapselab:table -->

The opening marker names the table and its options; everything up to the closing marker is
replaced. Every number comes from the validated entries in ``--submissions`` (default
``<root>/leaderboard/submissions``) through the leaderboard's one aggregation
(:func:`collapselab.leaderboard.aggregate.aggregate`, which scores with
:mod:`collapselab.scoring.scorer`), so the prose cannot drift from the board. Tables:

- ``scores task=T [columns=...] [metrics=m1,m2]``: one row per entry that ran T, by track
  (reference rows first, then by score): the strategy, and the columns ``initial`` (L_0),
  ``final`` (L_G), ``ratio`` (L_G / L_0), ``score`` (S with its Fieller 95% interval), ``track``
  (with the extra-compute flag) and ``share`` (synthetic share) (default
  ``ratio,score,track,share``), then each metric's mean at generation G.
- ``seeds task=T entries=a,b``: per seed, L_0 and each entry's L_G.
- ``curve task=T entry=E seed=k [generations=0,5,10] [metrics=loss,...]``: one seed's metrics per
  generation (default every generation, the loss).
- ``tracks``: per track table of the board, its reference rows, ranked entries and entries that
  cover only some ranked tasks.
- ``cost``: per task, its version, the entries with a section, their runs, and the wall time the
  runs recorded (every phase of every generation), summed and divided by 2 (what ``--jobs 2``
  takes on the machine that made them, when its two runs at a time share the cores evenly), and
  the kinds of machine (CPU, BLAS kernel) the runs recorded.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.errors import CollapseLabError, ParameterError, SubmissionError
from collapselab.formats import submission
from collapselab.leaderboard import aggregate, rules, validate
from collapselab.scoring import scorer

OPEN = re.compile(r"^<!-- collapselab:table (?P<spec>[^>]*?) -->\n(?P<body>.*?)^<!-- /collapselab:table -->$",
                  re.MULTILINE | re.DOTALL)
CARDS = ("README.md", "tasks/*/README.md")
SCORE_COLUMNS = ("initial", "final", "ratio", "score", "track", "share")
DEFAULT_COLUMNS = "ratio,score,track,share"


@dataclass(frozen=True)
class Region:
    """One generated region of a document: its spec, current body, where the body lies and the
    line of its opening marker."""

    spec: str
    body: str
    start: int
    end: int
    line: int


class NotPublishedYet(ParameterError):
    """No valid entry has a section of the task at its installed version (e.g. just after a version bump)."""


def not_published_note(task: str) -> str:
    """What a generated region says while no entry has a section of ``task``."""
    try:
        version = f" (version {registry.task_class(task).version})"
    except CollapseLabError:
        version = ""
    return (f"*No entry has a section of `{task}` at its installed version{version} yet: "
            f"`python -m collapselab.leaderboard.baselines --tasks {task}` runs them, then "
            "`collapselab leaderboard docs --write` fills this table.*\n")


@dataclass(frozen=True)
class Sources:
    """The validated entries and the board computed from them."""

    entries: Mapping[str, Mapping[str, Any]]
    board: Mapping[str, Any]

    def rows(self, task: str) -> list[Mapping[str, Any]]:
        return [row for row in self.board["entries"] if task in row["tasks"]]

    def entry(self, name: str, task: str) -> Mapping[str, Any]:
        if not self.rows(task):
            raise NotPublishedYet(task)
        if name not in self.entries or task not in self.entries[name]["tasks"]:
            raise ParameterError(f"no valid entry {name!r} with a {task} section")
        return self.entries[name]["tasks"][task]


def _sig(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _score(row: Mapping[str, Any], task: str) -> str:
    if row["reference_kind"] == "denominator":
        return "0 (by definition)"
    score = row["tasks"][task]["score"]
    if score is None:
        return "n/a (no replace entry)"
    low, high = score["ci_low"], score["ci_high"]
    interval = "[unbounded]" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"
    return f"{score['mean']:.3f} {interval}"


def _label(row: Mapping[str, Any]) -> str:
    kind = {"denominator": " (reference)", "ceiling": " (ceiling)"}.get(row["reference_kind"] or "", "")
    return f"{row['strategy']}{kind}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def _list(options: Mapping[str, str], key: str, default: str = "") -> list[str]:
    return [item for item in options.get(key, default).split(",") if item]


def scores_table(sources: Sources, options: Mapping[str, str]) -> str:
    task = _required(options, "task")
    columns, metrics = _list(options, "columns", DEFAULT_COLUMNS), _list(options, "metrics")
    unknown = sorted(set(columns) - set(SCORE_COLUMNS))
    if unknown:
        raise ParameterError(f"unknown scores column(s) {unknown}; choose among {list(SCORE_COLUMNS)}")
    rows = sources.rows(task)
    if not rows:
        raise NotPublishedYet(task)
    generations = rows[0]["tasks"][task]["generations"]
    order = list(scorer.TRACKS)

    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        own = row["tasks"][task]
        score = own["score"]["mean"] if own["score"] is not None else float("-inf")
        return order.index(own["track"]), own["extra_compute"], not row["reference"], -score, row["name"]

    cells: dict[str, tuple[str, Callable[[Mapping[str, Any]], str]]] = {
        "initial": ("L_0", lambda own: _sig(own["initial"]["mean"])),
        "final": (f"L_{generations}", lambda own: _sig(own["final"]["mean"])),
        "ratio": (f"L_{generations} / L_0", lambda own: _sig(own["ratio"]["mean"], 3)),
        "track": ("track", lambda own: own["track"] + (", extra compute" if own["extra_compute"] else "")),
        "share": ("synthetic share", lambda own: "n/a" if own["synthetic_share"] is None else f"{100 * own['synthetic_share']:.0f}%"),
    }
    header = ["strategy"] + [("score S [95% CI]" if c == "score" else cells[c][0]) for c in columns]
    header += [f"`{m}` at g = {generations}" for m in metrics]
    body = []
    for row in sorted(rows, key=key):
        own = row["tasks"][task]
        line = [_label(row)] + [_score(row, task) if c == "score" else cells[c][1](own) for c in columns]
        line += [_sig(own["metrics"][m]["final"]["mean"]) if m in own["metrics"] else "n/a" for m in metrics]
        body.append(line)
    return _table(header, body)


def seeds_table(sources: Sources, options: Mapping[str, str]) -> str:
    task, names = _required(options, "task"), _list(options, "entries")
    if not names:
        raise ParameterError("the seeds table needs entries=a,b")
    curves = {name: submission.curves(sources.entry(name, task)) for name in names}
    generations = sources.entry(names[0], task)["generations"]
    seeds = sorted(set.intersection(*(set(c) for c in curves.values())))
    header = ["seed", "L_0"] + [f"{name}: L_{generations}" for name in names]
    return _table(header, [[str(seed), _sig(curves[names[0]][seed][0])] + [_sig(curves[n][seed][-1]) for n in names]
                           for seed in seeds])


def curve_table(sources: Sources, options: Mapping[str, str]) -> str:
    task, name, seed = _required(options, "task"), _required(options, "entry"), int(_required(options, "seed"))
    section = sources.entry(name, task)
    run = next((r for r in section["runs"] if r["seed"] == seed), None)
    if run is None:
        raise ParameterError(f"entry {name!r} has no seed {seed} on {task}")
    metrics = _list(options, "metrics", "loss")
    wanted = [int(g) for g in _list(options, "generations")] or list(range(len(run["records"])))
    if any(not 0 <= g < len(run["records"]) for g in wanted):
        raise ParameterError(f"generations {wanted}: entry {name!r} has generations 0-{len(run['records']) - 1}")
    return _table(["generation"] + [f"`{m}`" for m in metrics],
                  [[str(g)] + [_sig(run["records"][g]["metrics"].get(m)) for m in metrics] for g in wanted])


def tracks_table(sources: Sources, options: Mapping[str, str]) -> str:
    tables = sources.board["tracks"]
    if not tables:
        raise ParameterError("the board has no track table")
    ranked = ", ".join(f"`{t}`" for t in sources.board["ranked_tasks"]) or "none"
    rows = [[table["name"], str(len(table["references"])), str(len(table["ranked"])), str(len(table["partial"]))]
            for table in tables]
    return (f"Ranked tasks (replace's degradation passes the gate): {ranked}.\n\n"
            + _table(["track", "reference rows", "ranked entries", "entries on some ranked tasks only"], rows))


#: Parallel runs the published board's cost is stated for (``--jobs 2`` on a 2-core machine).
COST_JOBS = 2


def plain_cell(text: str, limit: int = 80) -> str:
    """Submitted text (a recorded CPU name) as a table cell: letters, digits and `` ,.()+_-`` only, so no
    pipe or markup reaches the Markdown; ``limit`` characters at most."""
    return re.sub(r"[^A-Za-z0-9 ,.()+_-]", "?", text)[:limit]


def cost_table(sources: Sources, options: Mapping[str, str]) -> str:
    rows = []
    for task in sources.board["tasks"]:
        entries = sum(1 for entry in sources.entries.values() if task["name"] in entry["tasks"])
        rows.append([f"`{task['name']}`", task["version"], str(entries), str(task["runs"]),
                     f"{task['run_seconds'] / 3600:.2f}", f"{task['run_seconds'] / 3600 / COST_JOBS:.2f}",
                     "; ".join(plain_cell(kind) for kind in task["machines"])])
    total = sum(task["run_seconds"] for task in sources.board["tasks"])
    rows.append(["all", "", str(len(sources.entries)), str(sum(task["runs"] for task in sources.board["tasks"])),
                 f"{total / 3600:.2f}", f"{total / 3600 / COST_JOBS:.2f}", ""])
    return _table(["task", "version", "entries", "runs", "run time (h)", f"at --jobs {COST_JOBS} (h)",
                   "recorded on (CPU, BLAS kernel)"], rows)


#: table kind -> (its function, the options it takes)
TABLES: dict[str, tuple[Callable[[Sources, Mapping[str, str]], str], tuple[str, ...]]] = {
    "scores": (scores_table, ("task", "columns", "metrics")),
    "seeds": (seeds_table, ("task", "entries")),
    "curve": (curve_table, ("task", "entry", "seed", "generations", "metrics")),
    "tracks": (tracks_table, ()),
    "cost": (cost_table, ()),
}


def _required(options: Mapping[str, str], key: str) -> str:
    if key not in options:
        raise ParameterError(f"the table needs {key}=...")
    return options[key]


def render(spec: str, sources: Sources) -> str:
    """The generated text of a region whose opening marker says ``spec`` (``KIND key=value ...``)."""
    kind, *items = spec.split()
    if kind not in TABLES:
        raise ParameterError(f"unknown table {kind!r}; known: {sorted(TABLES)}")
    function, known = TABLES[kind]
    options = dict(item.split("=", 1) for item in items if "=" in item)
    if len(options) != len(items):
        raise ParameterError(f"table options are key=value, got {spec!r}")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ParameterError(f"table {kind!r} takes the options {list(known)}, not {unknown}")
    try:
        return function(sources, options)
    except NotPublishedYet:
        return not_published_note(options["task"])


def documents(root: Path) -> list[Path]:
    """The README and the task cards under ``root``."""
    return sorted({path for pattern in CARDS for path in Path(root).glob(pattern) if path.is_file()})


def regions(path: Path) -> list[Region]:
    text = path.read_text(encoding="utf-8")
    return [Region(m["spec"].strip(), m["body"], m.start("body"), m.end("body"), text.count("\n", 0, m.start()) + 1)
            for m in OPEN.finditer(text)]


def load(submissions: Path, policy: rules.Rules) -> Sources:
    """The validated entries of ``submissions`` and their board; refuses a folder with invalid files
    (a table must not silently lose the rows of an entry that no longer validates)."""
    entries, problems = validate.load_entries(Path(submissions), policy)
    if problems:
        raise SubmissionError(["the entries the documents are generated from are not all valid:", *validate.flat(problems)])
    return Sources(entries, aggregate.aggregate(entries))


def rewrite(root: Path, sources: Sources, write: bool) -> list[str]:
    """Every region whose text differs from what the entries say (rewritten when ``write``), as lines."""
    stale = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        found = regions(path)
        pieces, last = [], 0
        for region in found:
            try:
                wanted = render(region.spec, sources)
            except CollapseLabError as exc:
                raise ParameterError(f"{path}:{region.line}: table {region.spec!r}: {exc}") from None
            if wanted != region.body:
                stale.append(f"{path}:{region.line}: table {region.spec!r} differs from the entries")
            pieces += [text[last:region.start], wanted]
            last = region.end
        if write and found:
            new = "".join(pieces) + text[last:]
            if new != text:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    from collapselab.leaderboard.cli import add_docs_arguments

    parser = argparse.ArgumentParser(prog="python -m collapselab.leaderboard.docs", description=__doc__.split("\n\n")[0])
    add_docs_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    try:
        if not documents(root):
            raise ParameterError(f"no README.md or tasks/*/README.md under {root}")
        sources = load(Path(args.submissions) if args.submissions else root / "leaderboard" / "submissions",
                       rules.Rules(preset=args.preset))
        stale = rewrite(root, sources, write=args.write)
    except SubmissionError as exc:
        print("\n".join(f"error: {line}" for line in exc.problems), file=sys.stderr)
        return 2
    except CollapseLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.write:
        print("\n".join(f"rewrote {line.split(': table', 1)[0]}" for line in stale) or "every generated region is up to date")
        return 0
    if stale:
        print("\n".join(stale + ["regenerate them with: collapselab leaderboard docs --write"]))
        return 1
    print("every generated region matches the entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
