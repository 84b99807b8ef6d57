"""How sure the board is of its order, and what the site shows of it: rank bands from the intervals,
the best entry per task, the upper frontier of score against synthetic share, the cost frontier,
the cost of every row relative to replace, "not applicable" apart from "not run" (in the tables and
on the overview), the gate's verdict per task, and colours and markers that stay put."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest

from collapselab.leaderboard import aggregate, applicability, baselines, site, standing, validate
from collapselab.scoring import scorer, styles
from collapselab.storage import schema
from tests.entries import FROZEN_BOARD, SITE_RULES


def interval(mean: float, low: float | None, high: float | None) -> dict:
    return {"mean": mean, "ci_low": low, "ci_high": high}


# ---------------------------------------------------------------- rank bands
def test_entries_overlapping_the_leader_share_its_band_and_separated_entries_get_one_rank():
    bands = standing.rank_bands({
        "leader": interval(0.90, 0.85, 0.95),
        "close": interval(0.88, 0.84, 0.92),   # overlaps the leader
        "wide": interval(0.80, 0.60, 0.86),    # overlaps the leader and close
        "far": interval(0.30, 0.28, 0.32),     # below everyone's interval
    })
    assert bands == {"leader": (1, 3), "close": (1, 3), "wide": (1, 3), "far": (4, 4)}
    assert [standing.band_text(bands[n]) for n in ("leader", "far")] == ["1–3", "4"]


def test_a_band_starts_below_1_only_when_an_interval_lies_wholly_above():
    bands = standing.rank_bands({
        "a": interval(0.95, 0.94, 0.96),
        "b": interval(0.90, 0.80, 0.945),   # overlaps a
        "c": interval(0.85, 0.82, 0.88),    # overlaps b, wholly below a
    })
    assert bands == {"a": (1, 2), "b": (1, 3), "c": (2, 3)}


def test_an_unbounded_interval_overlaps_every_other():
    bands = standing.rank_bands({"a": interval(0.9, 0.89, 0.91), "b": interval(0.5, None, None), "c": interval(0.1, 0.09, 0.11)})
    assert bands == {"a": (1, 2), "b": (1, 3), "c": (2, 3)}


def test_the_best_per_task_is_the_highest_score_and_ties_are_the_intervals_that_reach_it():
    found = standing.best_on_task({"a": interval(0.9, 0.85, 0.95), "b": interval(0.88, 0.86, 0.9), "c": interval(0.5, 0.4, 0.6)})
    assert found == {"best": ["a"], "tied": ["b"]}
    assert standing.best_on_task({"x": interval(0.7, 0.7, 0.7), "y": interval(0.7, 0.7, 0.7)}) == {"best": ["x", "y"], "tied": []}
    assert standing.best_on_task({}) == standing.best_on_task({"alone": interval(0.9, 0.8, 1.0)}) == {"best": [], "tied": []}


def test_no_entry_at_or_below_the_reference_is_marked_best():
    worse = {"a": interval(-0.05, -0.2, 0.1), "b": interval(-0.35, -0.45, -0.25)}  # both below replace (0)
    assert standing.best_on_task(worse) == {"best": ["a"], "tied": []}
    assert standing.best_on_task(worse, floor=0.0) == {"best": [], "tied": []}
    mixed = {"a": interval(0.2, -0.1, 0.5), "b": interval(-0.02, -0.3, 0.26), "c": interval(0.1, 0.05, 0.15)}
    assert standing.best_on_task(mixed, floor=0.0) == {"best": ["a"], "tied": ["c"]}  # b overlaps a but is below 0
    assert standing.best_on_task({"alone": interval(0.3, 0.2, 0.4)}, floor=0.0) == {"best": [], "tied": []}


# ---------------------------------------------------------------- frontier
def test_the_upper_frontier_keeps_the_trade_off_and_drops_dominated_entries():
    points = {"real-heavy": (0.2, 0.95), "mid": (0.5, 0.90), "dominated": (0.5, 0.70), "synthetic-heavy": (0.9, 0.60),
              "worse-and-less": (0.3, 0.80)}
    assert standing.upper_frontier(points) == ["mid", "real-heavy", "synthetic-heavy"]


def test_shares_within_a_point_count_as_equal_on_the_frontier():
    # accumulate-subsample's share is 80.2% where accumulate's is 79.8%: the same loop, not a better trade-off
    points = {"accumulate": (0.798, 0.883), "accumulate-subsample": (0.802, 0.753)}
    assert standing.upper_frontier(points) == ["accumulate"]
    assert standing.upper_frontier(points, tolerance=0.0) == ["accumulate", "accumulate-subsample"]
    assert standing.upper_frontier({"a": (0.5, 0.8), "b": (0.5, 0.8)}) == ["a", "b"]  # equal points: neither dominates


# ---------------------------------------------------------------- colours and markers
def test_the_cost_frontier_keeps_the_cheapest_way_to_each_score():
    points = {"cheap-bad": (0.8, 0.1), "mid": (1.0, 0.5), "dear-good": (3.0, 0.9), "dear-bad": (3.0, 0.2), "worse-mid": (1.2, 0.4)}
    assert standing.cost_frontier(points) == ["cheap-bad", "dear-good", "mid"]
    # within the tolerance a cost counts as equal: the better score takes it
    assert standing.cost_frontier({"a": (1.0, 0.5), "b": (1.05, 0.6)}) == ["b"]
    assert standing.cost_frontier({"a": (1.0, 0.5), "b": (1.05, 0.6)}, tolerance=0.0) == ["a", "b"]
    assert standing.cost_frontier({"a": (1.0, 0.5), "b": (1.0, 0.5)}) == ["a", "b"]


def test_every_shipped_entry_has_a_fixed_style_and_no_two_look_alike():
    assert set(baselines.entries()) <= set(styles.FIXED)
    looks = [(s.colour, s.marker) for s in styles.FIXED.values()]
    assert len(set(looks)) == len(looks)
    assert all(s.marker in styles.MARKERS and s.marker in {"o", *site.SWATCH_POLYGONS} for s in styles.FIXED.values())


def test_other_names_get_a_style_from_their_name_alone_in_any_process():
    names = ["my-strategy", "another", "x" * 200, "ünïcode"]
    here = [styles.style(n) for n in names]
    assert all(s.marker in styles.MARKERS and len(s.colour) == 7 and s.colour.startswith("#") for s in here)
    assert len({s.colour for s in here}) == len(names)
    script = "import sys; from collapselab.scoring import styles; print([tuple(vars(styles.style(n)).values()) for n in sys.argv[1:]])"
    for seed in ("1", "2"):  # Python's own hash() differs between processes: the style must not use it
        out = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert out.strip() == str([(s.colour, s.marker) for s in here])


# ---------------------------------------------------------------- applicability
def test_a_strategy_missing_a_task_hook_is_not_applicable_and_anything_else_missing_is_not_run(tmp_path):
    shipped = frozenset(baselines.shipped())
    self_correct = {"name": "self-correct", "params": {}, "uses_extra_real_data": False}
    assert "'correct'" in applicability.reason(self_correct, "mnist_vae", "cpu", shipped)
    assert applicability.reason(self_correct, "linear_regression", "cpu", shipped) is None
    assert "adaptive-ridge" in applicability.reason({"name": "adaptive-ridge", "params": {}}, "text_lm", "cpu", shipped)
    # not a shipped baseline: never imported, so nothing says it cannot run; its own declaration of fresh data is data
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    strange = {"name": f"{evil}:Evil", "params": {}, "uses_extra_real_data": False}
    assert applicability.not_applicable(strange, ["mnist_vae", "text_lm"], "cpu") == {}
    assert not (tmp_path / "imported").exists()
    assert applicability.not_applicable({**strange, "params": {"bad": 1}, "name": "mix"}, ["mnist_vae"], "cpu") == {}


# ------------------------------------------------- a complete board (frozen test data)
@pytest.fixture(scope="module")
def committed():
    with schema.remembering():
        entries, problems = validate.load_entries(FROZEN_BOARD, SITE_RULES)
    assert problems == {}
    return entries


@pytest.fixture(scope="module")
def board(committed):
    return aggregate.aggregate(committed)


def test_the_board_says_why_an_entry_is_missing_a_task(board):
    by_name = {e["name"]: e for e in board["entries"]}
    assert set(by_name["self-correct"]["not_applicable"]) == {"mnist_vae", "text_lm"}  # no expert to correct with
    assert "conformer_diffusion" not in by_name["self-correct"]["not_applicable"]     # it has one: not run
    assert by_name["accumulate"]["not_applicable"] == {}
    assert site.missing_cell(by_name["self-correct"], "mnist_vae")[0] == "not-applicable"
    assert site.missing_cell(by_name["self-correct"], "conformer_diffusion")[0] == "not-run"


def test_the_board_carries_the_gate_the_bands_the_best_and_the_frontier(board):
    for task in board["tasks"]:
        gate = task["degradation"]
        assert gate["level"] == scorer.GATE_LEVEL and gate["df"] == gate["n"] - 1
        assert gate["significant"] == (gate["p_value"] < gate["level"]) == task["ranked"]
        assert f"{gate['df']} degrees of freedom" in gate["test"]
    tables = {t["name"]: t for t in board["tracks"]}
    by_name = {e["name"]: e for e in board["entries"]}
    for table in tables.values():
        for task, marks in table["best"].items():
            members = [by_name[n] for n in table["ranked"] + table["partial"] if task in by_name[n]["tasks"]]
            beats_replace = [e["tasks"][task]["score"]["mean"] for e in members
                             if e["tasks"][task]["score"] and e["tasks"][task]["score"]["mean"] > 0]
            scored = [e for e in members if e["tasks"][task]["score"]]
            assert [by_name[n]["tasks"][task]["score"]["mean"] for n in marks["best"]] == \
                ([max(beats_replace)] if beats_replace and len(scored) > 1 else [])
    assert tables[scorer.AUGMENTATION]["best"]["linear_regression"]["best"] == ["self-correct"]
    assert tables[scorer.AUGMENTATION]["best"]["mnist_vae"] == {"best": ["mix"], "tied": ["accumulate"]}
    regression = next(t for t in board["tasks"] if t["name"] == "linear_regression")
    assert regression["ceiling"] == ["real-only"]
    assert {"self-correct", "verifier-filter-accumulate"} <= set(regression["frontier"])
    assert not {"mix", "accumulate", "accumulate-subsample", "real-only"} & set(regression["frontier"])


def test_ranked_entries_get_bands_from_their_overall_intervals(board, committed):
    assert all(e["rank_band"] is None for e in board["entries"] if e["rank"] is None)
    # the frozen board ranks nobody (only replace covers every task); regression alone ranks
    regression = {name: {**copy.deepcopy(entry), "tasks": {"linear_regression": entry["tasks"]["linear_regression"]}}
                  for name, entry in committed.items()}
    ranked = aggregate.aggregate(regression)
    by_name = {e["name"]: e for e in ranked["entries"]}
    augmentation = next(t for t in ranked["tracks"] if t["name"] == scorer.AUGMENTATION)
    names = augmentation["ranked"]
    assert len(names) >= 5 and [by_name[n]["rank"] for n in names] == list(range(1, len(names) + 1))
    expected = standing.rank_bands({n: by_name[n]["overall"] for n in names})
    assert {n: tuple(by_name[n]["rank_band"]) for n in names} == expected
    assert all(band[0] <= by_name[n]["rank"] <= band[1] for n, band in expected.items())
    assert by_name["real-only"]["rank"] is None and by_name["real-only"]["reference_kind"] == "ceiling"


def test_site_tables_put_references_ranked_and_partial_rows_in_their_own_track():
    board = {"tracks": [{"name": "closed-loop", "references": ["replace"], "ranked": ["b"], "partial": ["c"],
                         "best": {"t": {"best": ["b"], "tied": ["c"]}}},
                        {"name": "augmentation", "references": ["replace", "real-only"], "ranked": [], "partial": ["d"]}],
             "entries": [{"name": n, "track": "closed-loop"} for n in ("replace", "b", "c")]
             + [{"name": n, "track": "augmentation"} for n in ("real-only", "d")]}
    found = site.tables(board)
    assert [(t["id"], [e["name"] for e in t["rows"]], t["ranked"]) for t in found] == [
        ("track-closed-loop", ["replace", "b", "c"], True), ("track-augmentation", ["replace", "real-only", "d"], False)]
    # replace is shown in both tables and belongs to one: its row id there is entry-replace, elsewhere the table's
    assert found[0]["home"] == ["replace", "b", "c"] and found[1]["home"] == ["real-only", "d"]
    assert [site.task_mark(found[0], "t", n) for n in ("b", "c", "replace")] == ["best", "tied", None]
    assert site.task_marks(board, "t") == {"b": "best", "c": "tied"}


def test_every_row_costs_relative_to_replace_from_its_records(board, committed):
    by_name = {e["name"]: e for e in board["entries"]}
    for entry in board["entries"]:
        for task, row in entry["tasks"].items():
            runs = [run["records"] for run in committed[entry["name"]]["tasks"][task]["runs"]]
            reference = [run["records"] for run in committed["replace"]["tasks"][task]["runs"]]
            for key in ("steps", "samples", "examples"):
                ours = sum(sum(r["compute"][key] for r in records[1:]) for records in runs) / len(runs)
                theirs = sum(sum(r["compute"][key] for r in records[1:]) for records in reference) / len(reference)
                assert row["cost"][key] == pytest.approx(ours, rel=1e-12)
                assert row["cost"][f"{key}_ratio"] == (None if theirs == 0 else pytest.approx(ours / theirs, rel=1e-12))
            units = [sum(sum(r["seconds"].values()) * r["compute"]["steps"] / r["seconds"]["fit"] for r in records[1:])
                     / (records[0]["compute"]["steps"] * (len(records) - 1)) if records[0]["compute"]["steps"] else 0.0 for records in runs]
            timed = all(r["seconds"]["fit"] >= aggregate.MIN_TIMED_FIT_SECONDS and r["compute"]["steps"] > 0
                        for records in runs for r in records[1:])
            assert row["cost"]["time_units"] == (pytest.approx(sum(units) / len(units), rel=1e-12) if timed else None)
    # the design of the baselines, seen in their costs: matched steps, and reward-curate draws 4 candidates per item
    assert by_name["reward-curate"]["tasks"]["mnist_vae"]["cost"]["samples_ratio"] == pytest.approx(4.0)
    assert all(e["tasks"]["mnist_vae"]["cost"]["steps_ratio"] == pytest.approx(1.0) for e in board["entries"] if "mnist_vae" in e["tasks"])
    assert by_name["replace"]["tasks"]["mnist_vae"]["cost"]["time_units_ratio"] == pytest.approx(1.0)
    assert by_name["replace"]["tasks"]["linear_regression"]["cost"]["time_units"] is None  # fits in milliseconds: not timed
    for task in board["tasks"]:  # what the board cost: every run of every entry on the task
        runs = [run["records"] for entry in committed.values() if task["name"] in entry["tasks"]
                for run in entry["tasks"][task["name"]]["runs"]]
        assert task["runs"] == len(runs)
        assert task["run_seconds"] == pytest.approx(sum(sum(sum(r["seconds"].values()) for r in records) for records in runs))


def test_the_cost_frontier_is_per_track_among_scored_entries(board):
    mnist = next(t for t in board["tasks"] if t["name"] == "mnist_vae")
    by_name = {e["name"]: e for e in board["entries"]}
    for track, names in mnist["cost_frontier"].items():
        members = {e["name"]: (e["tasks"]["mnist_vae"]["cost"]["time_units_ratio"], e["tasks"]["mnist_vae"]["score"]["mean"])
                   for e in board["entries"] if "mnist_vae" in e["tasks"] and not e["reference"]
                   and e["tasks"]["mnist_vae"]["track"] == track}
        assert names == standing.cost_frontier(members) and names
        assert all(by_name[n]["tasks"]["mnist_vae"]["track"] == track for n in names)
    assert "replace" not in {n for names in mnist["cost_frontier"].values() for n in names}


def test_the_overview_has_one_row_per_entry_and_says_why_a_cell_is_empty(board, monkeypatch, tmp_path):
    drawn = {}
    monkeypatch.setattr(site.plots, "overview_figure", lambda tasks, rows, path: drawn.update(tasks=tasks, rows=rows))
    site._overview(board, tmp_path)
    assert drawn["tasks"] == [t["name"] for t in board["tasks"]]
    assert [r.label.split(" (")[0] for r in drawn["rows"]] == [e["name"] for e in board["entries"]]
    rows = {r.label.split(" (")[0]: r for r in drawn["rows"]}
    assert rows["self-correct"].scores["mnist_vae"] == "not applicable"
    assert rows["self-correct"].scores["conformer_diffusion"] == "not run"
    mix = next(e for e in board["entries"] if e["name"] == "mix")["tasks"]["mnist_vae"]["score"]
    assert rows["mix"].scores["mnist_vae"] == (mix["mean"], mix["ci_low"], mix["ci_high"])
    assert rows["accumulate-growing"].hollow and rows["replace"].label == "replace (reference)"
    assert [r.group for r in drawn["rows"]] == [e["track"] + (", extra compute" if e["extra_compute"] else "") for e in board["entries"]]


def test_the_task_figures_draw_each_entry_in_its_own_style(board, monkeypatch, tmp_path):
    drawn: dict[str, list] = {}
    monkeypatch.setattr(site.plots, "cost_figure", lambda name, points, reference, path: drawn.update(cost=points, reference=reference))
    monkeypatch.setattr(site.plots, "curves_figure", lambda name, unit, loss, ratio, path, log=False: drawn.setdefault("loss", loss))
    monkeypatch.setattr(site.plots, "metrics_figure", lambda metrics, path, log=False: None)
    monkeypatch.setattr(site.plots, "share_figure",
                        lambda name, points, ceilings, path, fresh=(): drawn.update(share=points, ceilings=ceilings, fresh=fresh))
    task = next(t for t in board["tasks"] if t["name"] == "linear_regression")
    rows = [e for e in board["entries"] if "linear_regression" in e["tasks"]]
    figures = site._task_figures(task, rows, tmp_path)
    for series in drawn["loss"]:
        name = series.label.split(" (n=")[0]
        assert (series.colour, series.marker) == (styles.style(name).colour, styles.style(name).marker)
    assert {p.label.split(",")[0] for p in drawn["share"]} == {e["name"] for e in rows if not e["reference"]
                                                               and e["tasks"]["linear_regression"]["track"] == scorer.AUGMENTATION}
    assert [p.label for p in drawn["ceilings"]] == ["real-only (ceiling)"] and figures["share"]["ceilings"] == ["real-only"]
    fresh = sorted(e["name"] for e in rows if e["tasks"]["linear_regression"]["track"] == scorer.FRESH_DATA)
    assert fresh and sorted(p.label for p in drawn["fresh"]) == fresh == figures["share"]["fresh"]
    assert {p.label.split(",")[0] for p in drawn["share"] if p.frontier} == set(task["frontier"])
    assert all(p.hollow == ("extra compute" in p.label) for p in drawn["share"])
    timed = [e for e in rows if e["tasks"]["linear_regression"]["cost"]["time_units_ratio"] is not None]
    assert figures["cost"] is None and drawn.get("cost") is None and not timed  # regression fits too fast to time
    mnist = next(t for t in board["tasks"] if t["name"] == "mnist_vae")
    figures = site._task_figures(mnist, [e for e in board["entries"] if "mnist_vae" in e["tasks"]], tmp_path)
    assert drawn["reference"].label == "replace" and (drawn["reference"].x, drawn["reference"].score) == (pytest.approx(1.0), 0.0)
    for track, points in drawn["cost"].items():
        assert {p.label.split(",")[0] for p in points if p.frontier} == set(mnist["cost_frontier"][track])
        by_name = {e["name"]: e["tasks"]["mnist_vae"]["cost"] for e in board["entries"] if "mnist_vae" in e["tasks"]}
        assert all(p.x == by_name[p.label.split(",")[0]]["time_units_ratio"] for p in points)
    assert figures["cost"]["src"] == "img/mnist_vae-cost.png"
