"""The leaderboard's numbers: the scorer's scores over the whole curve, the tracks assigned from the
records (closed-loop, augmentation with its ceiling, fresh-data), the extra-compute flag and the
synthetic share, ranking of full-coverage entries only, and the degradation gate."""

from __future__ import annotations

import copy

import pytest

from collapselab.contracts import registry
from collapselab.engine import sources
from collapselab.formats import submission
from collapselab.leaderboard import aggregate, validate
from collapselab.leaderboard.rules import Rules
from collapselab.scoring import scorer
from collapselab.tasks.linear_regression import LinearRegressionTask
from tests.entries import TASK, make_entries, write_all

TEXT = "text_lm"
TWIN = "regression_twin"
#: The text sections are there for the step budget's extra-compute flag only: one seed each, which
#: these rules accept (the regression sections keep their three seeds).
ONE_TEXT_SEED = Rules(preset="smoke", required_seeds=(0,))


class RegressionTwin(LinearRegressionTask):
    """The regression task under a second name: a second ranked task without a second model."""

    name = TWIN


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    root = tmp_path_factory.mktemp("entries")
    made = make_entries(root)
    text = make_entries(root, {"replace": "replace", "accumulate-growing": "accumulate[compute=growing]",
                               "accumulate": "accumulate"}, tasks=(TEXT,), seeds=(0,))
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
        run["manifest"]["task"]["source_sha256"] = sources.task_source_sha256(RegressionTwin)  # the twin's own code
    entry["tasks"][TWIN] = section
    return entry


def _board(entries, tmp_path):
    found, problems = validate.load_entries(write_all(tmp_path / "subs", list(entries.values())), ONE_TEXT_SEED)
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
    assert rows["fresh-real"]["track"] == scorer.FRESH_DATA
    growing = rows["accumulate-growing"]
    for task in (TASK, TEXT):  # more optimiser steps (text) or more examples per fit (regression)
        assert growing["tasks"][task]["extra_compute"] and growing["tasks"][task]["budget_ratio"] > 1.5
        assert not rows["accumulate"]["tasks"][task]["extra_compute"]
        assert rows["accumulate"]["tasks"][task]["budget_ratio"] == pytest.approx(1.0)
    assert growing["extra_compute"] and growing["track"] == scorer.AUGMENTATION
    assert rows["accumulate"]["track"] == rows["mix"]["track"] == scorer.AUGMENTATION
    assert not rows["accumulate"]["extra_compute"]


def test_tracks_come_from_what_the_records_show_and_references_are_not_ranked(entries, tmp_path):
    board, _ = _board(entries, tmp_path)
    rows = {row["name"]: row for row in board["entries"]}
    # real-only trains on the real pool only: the augmentation track's ceiling, shown and not ranked
    ceiling = rows["real-only"]
    assert ceiling["track"] == scorer.AUGMENTATION and ceiling["synthetic_share"] == 0.0
    assert ceiling["reference"] and ceiling["reference_kind"] == "ceiling" and ceiling["rank"] is None
    assert ceiling["tasks"][TASK]["score"]["mean"] == pytest.approx(1.0)  # the fixed design's real fit, unchanged
    # every synthetic generation and no real data: the fully synthetic loop, beside replace
    assert rows["accumulate-synthetic"]["track"] == rows["replace"]["track"] == scorer.CLOSED_LOOP
    assert rows["accumulate-synthetic"]["synthetic_share"] == 1.0
    assert rows["replace"]["reference_kind"] == "denominator" and rows["replace"]["rank"] is None
    assert rows["fresh-real"]["track"] == scorer.FRESH_DATA
    assert rows["mix"]["synthetic_share"] == pytest.approx(0.5)
    assert 0.5 < rows["accumulate"]["tasks"][TASK]["synthetic_share"] < 1.0
    for name in ("accumulate-synthetic", "fresh-real", "mix", "accumulate", "accumulate-growing"):  # ranked iff complete
        assert (rows[name]["rank"] is not None) == rows[name]["complete"], name
    tables = {t["name"]: t for t in board["tracks"]}
    listed = {name: t["ranked"] + t["partial"] for name, t in tables.items()}
    # the reference rows (the denominator, then the ceiling) head every table: the zero and the top of its scale
    assert all(t["references"] == ["replace", "real-only"] for t in board["tracks"])
    assert "real-only" not in listed[scorer.AUGMENTATION]
    assert set(listed[scorer.AUGMENTATION]) == {"accumulate", "mix"}  # growing is ranked only with extra compute
    assert listed["augmentation, extra compute"] == ["accumulate-growing"]
    assert listed[scorer.CLOSED_LOOP] == ["accumulate-synthetic"]
    assert listed[scorer.FRESH_DATA] == ["fresh-real"]
    assert all(t["description"] for t in board["tracks"])
    # a declaration is never read: an entry that says it draws fresh data but does not stays where its records put it
    declared = copy.deepcopy(entries)
    declared["mix"]["strategy"]["uses_extra_real_data"] = True
    for run in declared["mix"]["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"]["uses_extra_real_data"] = True
    again, _ = _board(declared, tmp_path / "declared")
    assert next(r for r in again["entries"] if r["name"] == "mix")["track"] == scorer.AUGMENTATION
    # any entry that trains on no synthetic item is a ceiling, whatever its name (mix[real_fraction=1] included)
    assert aggregate._reference_kind({"name": "mix", "strategy": {"name": "mix", "params": {"real_fraction": 1.0}}},
                                     {TASK: {"synthetic_share": 0.0}}) == "ceiling"


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
    augmentation = next(t for t in board["tracks"] if t["name"] == scorer.AUGMENTATION)
    assert "accumulate" in augmentation["partial"] and "accumulate" not in augmentation["ranked"]
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
    gate = board["tasks"][0]["degradation"]
    assert not gate["significant"] and gate["level"] == scorer.GATE_LEVEL and gate["df"] == 2
    assert gate["test"].startswith("one-sided t-test")
