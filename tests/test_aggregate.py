"""The leaderboard's numbers: the scorer's scores over the whole curve, the tracks (extra compute,
extra real data), ranking of full-coverage entries only, and the significance gate."""

from __future__ import annotations

import copy

import pytest

from collapselab.contracts import registry
from collapselab.leaderboard import aggregate, validate
from collapselab.operations import submission
from collapselab.scoring import scorer
from collapselab.tasks.linear_regression import LinearRegressionTask
from tests.entries import SMOKE, TASK, make_entries, write_all

TEXT = "text_lm"
TWIN = "regression_twin"


class RegressionTwin(LinearRegressionTask):
    """The regression task under a second name: a second ranked task without a second model."""

    name = TWIN


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    root = tmp_path_factory.mktemp("entries")
    made = make_entries(root)
    text = make_entries(root, {"replace": "replace", "accumulate-growing": "accumulate[compute=growing]",
                               "accumulate": "accumulate"}, tasks=(TEXT,))
    for name, entry in text.items():
        made[name]["tasks"].update(entry["tasks"])
    return made


@pytest.fixture
def twin(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", {**registry._TASKS, TWIN: RegressionTwin})


def with_twin(entry):
    entry = copy.deepcopy(entry)
    section = copy.deepcopy(entry["tasks"][TASK])
    for run in section["runs"]:
        run["manifest"]["task"]["name"] = TWIN
    entry["tasks"][TWIN] = section
    return entry


def _board(entries, tmp_path):
    found, problems = validate.load_entries(write_all(tmp_path / "subs", list(entries.values())), SMOKE)
    assert not problems
    return aggregate.aggregate(found), found


def test_scores_are_the_scorers_and_the_tracks_follow_compute_and_real_data(entries, tmp_path):
    board, found = _board(entries, tmp_path)
    rows = {row["name"]: row for row in board["entries"]}
    for name in ("accumulate", "mix"):
        section = found[name]["tasks"][TASK]
        expected = scorer.paired_score(submission.curves(section), submission.curves(found["replace"]["tasks"][TASK]))
        assert rows[name]["tasks"][TASK]["score"]["mean"] == pytest.approx(expected.mean, rel=1e-12)
        assert rows[name]["tasks"][TASK]["score"]["ci_low"] == pytest.approx(expected.ci_low, rel=1e-12)
    assert rows["replace"]["tasks"][TASK]["score"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert rows["fresh-real"]["track"] == scorer.EXTRA_REAL_DATA
    growing = rows["accumulate-growing"]
    assert growing["tasks"][TEXT]["track"] == scorer.EXTRA_COMPUTE and growing["track"] == scorer.EXTRA_COMPUTE
    assert growing["tasks"][TEXT]["budget_ratio"] > 1.5
    assert rows["accumulate"]["tasks"][TEXT]["track"] == scorer.STANDARD
    assert rows["accumulate"]["tasks"][TEXT]["budget_ratio"] == pytest.approx(1.0)
    assert rows["accumulate"]["track"] == rows["mix"]["track"] == scorer.STANDARD


def test_only_entries_covering_every_ranked_task_are_ranked(entries, tmp_path, twin):
    chosen = {"replace": with_twin(entries["replace"]), "mix": with_twin(entries["mix"]),
              "accumulate": entries["accumulate"]}
    for entry in chosen.values():
        entry["tasks"] = {t: s for t, s in entry["tasks"].items() if t in (TASK, TWIN)}
    board, _ = _board(chosen, tmp_path)
    rows = {row["name"]: row for row in board["entries"]}
    assert board["ranked_tasks"] == [TASK, TWIN]
    assert rows["mix"]["rank"] is not None and rows["mix"]["complete"]
    assert rows["accumulate"]["rank"] is None and rows["accumulate"]["overall"] is None  # one task of two
    assert rows["accumulate"]["tasks"][TASK]["score"] is not None  # but its per-task score is shown
    standard = next(t for t in board["tracks"] if t["name"] == scorer.STANDARD)
    assert "accumulate" in standard["partial"] and "accumulate" not in standard["ranked"]
    per_task = [rows["mix"]["tasks"][t]["score"]["mean"] for t in (TASK, TWIN)]
    assert rows["mix"]["overall"]["mean"] == pytest.approx(sum(min(1, max(-1, s)) for s in per_task) / 2)


def test_a_task_without_significant_degradation_is_not_ranked(entries, tmp_path):
    flat = copy.deepcopy(entries)
    for entry in flat.values():  # make every replace generation equal to generation 0
        entry["tasks"] = {TASK: entry["tasks"][TASK]}
    for run in flat["replace"]["tasks"][TASK]["runs"]:
        for record in run["records"][1:]:
            record["metrics"]["loss"] = run["records"][0]["metrics"]["loss"]
    board, _ = _board(flat, tmp_path)
    assert board["ranked_tasks"] == []
    assert all(row["rank"] is None for row in board["entries"])
    assert not board["tasks"][0]["ranked"]
