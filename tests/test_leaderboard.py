"""The leaderboard builder: scores from the scorer, tracks, coverage ranking, escaping of
submitted text, byte-identical rebuilds, and refusals that leave the previous site alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collapselab.cli.main import main
from collapselab.contracts import registry
from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.leaderboard import SUBMISSIONS, aggregate, site, validate
from collapselab.operations import submission
from collapselab.scoring import scorer
from collapselab.tasks.linear_regression import LinearRegressionTask

TASK = "linear_regression"
TWIN = "regression_twin"
HOSTILE = '<script>alert("x")</script><b>bold</b>'


class RegressionTwin(LinearRegressionTask):
    """The regression task under a second name: a second task without a second model."""

    name = TWIN


@pytest.fixture
def twin(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", {**registry._TASKS, TWIN: RegressionTwin})


def committed(name: str) -> dict[str, Any]:
    entry = json.loads((SUBMISSIONS / f"{name}.json").read_text())
    entry["tasks"] = {TASK: entry["tasks"][TASK]}  # unit tests stay fast as tasks are added
    return entry


def with_twin(entry: dict[str, Any]) -> dict[str, Any]:
    section = copy.deepcopy(entry["tasks"][TASK])
    for run in section["runs"]:
        run["manifest"]["task"]["name"] = TWIN
    return {**entry, "tasks": {**entry["tasks"], TWIN: section}}


def write_all(directory: Path, entries: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (directory / f"{entry['name']}.json").write_text(json.dumps(entry, indent=1))
    return directory


def baseline_names() -> list[str]:
    return sorted(p.stem for p in SUBMISSIONS.glob("*.json"))


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_scores_are_the_scorers_paired_by_seed_and_oracles_have_their_own_track():
    entries, problems = validate.load_entries(SUBMISSIONS)
    assert not problems
    board = aggregate.aggregate(entries)
    rows = {row["name"]: row for row in board["entries"]}
    for name in ("accumulate", "mix", "verifier-filter"):
        per_task = []
        for task, section in entries[name]["tasks"].items():
            reference = submission.curves(entries["replace"]["tasks"][task])
            scores = scorer.paired_scores(submission.curves(section), reference, section["generations"])
            per_task.append(np.mean(scores))
            assert rows[name]["tasks"][task]["score"]["mean"] == pytest.approx(per_task[-1], rel=1e-12)
        assert rows[name]["overall"]["mean"] == pytest.approx(np.mean(per_task), rel=1e-12)
    assert rows["replace"]["overall"]["mean"] == 0.0 and rows["replace"]["reference"]
    assert rows["fresh-real"]["track"] == "extra real data" and rows["fresh-real"]["rank"] == 1
    standard = [row for row in board["entries"] if row["track"] == "standard"]
    assert [row["rank"] for row in standard] == list(range(1, len(standard) + 1))
    keys = [(-row["coverage"], -row["overall"]["mean"]) for row in standard]
    assert keys == sorted(keys)
    assert rows["accumulate"]["compute_ratio"] > 5 and rows["replace"]["compute_ratio"] == 1.0
    assert rows["accumulate"]["real_fraction"] == 1.0 and rows["replace"]["real_fraction"] == 0.0


def test_overall_interval_is_a_stratified_bootstrap_over_seeds():
    assert aggregate.overall_interval([[1.0, 1.0, 1.0], [0.0, 0.0]]) == (0.5, 0.5)
    low, high = aggregate.overall_interval([[0.0, 1.0, 2.0, 3.0]])
    assert 0.0 <= low < 1.5 < high <= 3.0
    wide = aggregate.overall_interval([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    assert wide == pytest.approx(((low + 5) / 2, (high + 5) / 2), abs=0.15)


def test_entries_covering_more_tasks_rank_first_and_the_overall_score_averages_tasks(twin, tmp_path):
    entries = [with_twin(committed("replace")), committed("accumulate"), with_twin(committed("mix"))]
    found, problems = validate.load_entries(write_all(tmp_path / "subs", entries))
    assert not problems
    board = aggregate.aggregate(found)
    rows = {row["name"]: row for row in board["entries"]}
    assert board["ranked_tasks"] == [TASK, TWIN]
    assert (rows["mix"]["rank"], rows["accumulate"]["rank"]) == (1, 3)  # accumulate scores higher on its one task
    assert rows["accumulate"]["coverage"] == 1 and rows["mix"]["coverage"] == 2
    per_task = [rows["mix"]["tasks"][t]["score"]["mean"] for t in (TASK, TWIN)]
    assert rows["mix"]["overall"]["mean"] == pytest.approx(np.mean(per_task))


def test_build_escapes_submitted_text_never_imports_submitted_code_and_rebuilds_byte_identical(tmp_path):
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    hostile = committed("mix")
    hostile.update(name="html-in-text", description=HOSTILE, url="https://example.org/?a=1&b=2")
    hostile["strategy"].update(name=f"{evil}:Evil", citation="<img src=x onerror=alert(1)>")
    for run in hostile["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"].update(name=hostile["strategy"]["name"], citation=hostile["strategy"]["citation"])
    subs = write_all(tmp_path / "subs", [committed(n) for n in baseline_names()] + [hostile])
    out = tmp_path / "site"
    site.build(out, subs)
    assert not (tmp_path / "imported").exists()
    first = files(out)
    index = first["index.html"].decode()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in index
    assert "<script>alert" not in index and "<b>bold" not in index
    assert 'href="https://example.org/?a=1&amp;b=2"' in index
    page = first[f"task-{TASK}.html"].decode()
    assert "html-in-text" in page and "<script>alert" not in page and "<img src=x" not in page
    assert first["data/submissions/html-in-text.json"] == (subs / "html-in-text.json").read_bytes()
    assert first[f"img/{TASK}-loss.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert {f"task-{TASK}.html", "data/leaderboard.json", "static/sort.js", f"img/{TASK}-metrics.png"} <= set(first)

    site.build(out, subs)
    assert files(out) == first
    site.build(tmp_path / "elsewhere", subs)
    assert files(tmp_path / "elsewhere") == first


def test_build_refuses_bad_input_and_foreign_folders_and_keeps_the_old_site(tmp_path):
    subs = write_all(tmp_path / "subs", [committed(n) for n in ("replace", "mix")])
    out = tmp_path / "site"
    site.build(out, subs)
    before = files(out)

    bad = committed("accumulate")
    bad["preset"] = "smoke"
    write_all(subs, [bad])
    with pytest.raises(SubmissionError, match=r"accumulate.json: field preset: 'smoke'"):
        site.build(out, subs)
    (subs / "accumulate.json").unlink()

    (subs / "renamed.json").write_text((subs / "mix.json").read_text())
    with pytest.raises(SubmissionError, match=r"renamed.json: field name: the entry 'mix' must be stored as mix.json"):
        site.build(out, subs)
    (subs / "renamed.json").unlink()

    second = committed("replace")
    second["name"] = "replace-again"
    write_all(subs, [second])
    with pytest.raises(SubmissionError, match="all run 'replace'; keep one reference"):
        site.build(out, subs)
    assert files(out) == before

    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(CollapseLabError, match="is not a leaderboard build"):
        site.build(foreign, SUBMISSIONS)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_build_command_prints_the_overall_table(tmp_path, capsys):
    subs = write_all(tmp_path / "subs", [committed(n) for n in baseline_names()])
    assert main(["leaderboard", "build", "--out", str(tmp_path / "site"), "--submissions", str(subs)]) == 0
    out = capsys.readouterr().out
    assert "standard track" in out and "extra real data track" in out
    for name in baseline_names():
        assert f" {name} " in out
    assert f"wrote {tmp_path / 'site' / 'index.html'}: {len(baseline_names())} entries, 1 task(s)" in out
