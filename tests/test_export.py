"""Results as data: ``collapselab export`` (CSV, Parquet, JSON) and the Python API (``collapselab.run``,
``collapselab.load_results``). Every number of every record comes back unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import collapselab
from collapselab.cli.main import main
from collapselab.engine.rundir import find_runs
from collapselab.formats.records import as_json
from collapselab.leaderboard import SUBMISSIONS

ENTRIES = ("replace", "mix", "fresh-real")


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":  # pandas 3 parses floats exactly by default; pandas 2 needs "round_trip"
        exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
        return pd.read_csv(path, keep_default_na=False, na_values=[""], **exact)
    if fmt == "json":  # a list of row objects, read with the standard library: no float goes through pandas' parser
        rows = json.loads(path.read_text())
        assert all(list(row) == list(rows[0]) for row in rows)  # every row has every column, in order
        return pd.DataFrame(rows)
    return pd.read_parquet(path)


def flat(record: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every number of a record with the column it must land in."""
    for group in ("metrics", "compute", "seconds"):
        for key, value in record[group].items():
            yield f"{group}.{key}", value
    composition = record["composition"]
    for key in ("real", "total", "fresh_real", "weighted"):
        yield f"composition.{key}", composition[key]
    for origin, count in composition["synthetic"].items():
        yield f"composition.synthetic.{origin}", count
    yield "composition.synthetic", sum(composition["synthetic"].values())


def check_round_trip(table: pd.DataFrame, runs: Iterator[tuple[str, Mapping[str, Any], list[Mapping[str, Any]]]]) -> int:
    indexed = table.set_index(["source", "task", "seed", "generation"])
    assert indexed.index.is_unique
    checked = 0
    for source, manifest, records in runs:
        for record in records:
            row = indexed.loc[(source, manifest["task"]["name"], manifest["seed"], record["generation"])]
            for column, value in flat(record):
                assert row[column] == value, (source, record["generation"], column, row[column], value)
                checked += 1
            assert json.loads(row["fit_options"]) == record.get("fit_options", {})
            assert json.loads(row["params"]) == manifest["strategy"]["params"]
            assert row["strategy_name"] == manifest["strategy"]["name"] and row["preset"] == manifest["task"]["preset"]
    return checked


def submission_runs(paths: list[Path]) -> Iterator[tuple[str, Mapping[str, Any], list[Mapping[str, Any]]]]:
    for path in paths:
        entry = json.loads(path.read_text())
        for section in entry["tasks"].values():
            for run in section["runs"]:
                yield str(path), run["manifest"], run["records"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_of_submissions_gives_back_every_number_of_every_record(tmp_path, capsys, fmt):
    paths = [SUBMISSIONS / f"{name}.json" for name in ENTRIES]
    out = tmp_path / f"results.{fmt}"
    assert main(["export", *map(str, paths), "--format", fmt, "--out", str(out)]) == 0
    assert f"wrote {out}:" in capsys.readouterr().out
    table = read_back(out, fmt)
    records = sum(len(r) for _, _, r in submission_runs(paths))
    assert len(table) == records
    assert check_round_trip(table, submission_runs(paths)) > 20 * records
    assert set(table["entry"]) == set(ENTRIES)
    assert list(table.columns[:3]) == ["source", "entry", "task"] and table.columns[-1] == "fit_options"


def test_export_of_run_directories_and_the_format_from_the_suffix(tmp_path, capsys):
    for strategy in ("replace", "accumulate[compute=growing]"):  # whole pools: theory at every generation
        assert main(["run", "--task", "linear_regression", "--strategy", strategy, "--preset", "smoke", "--seeds", "0-1",
                     "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "rep")]) == 0
    out = tmp_path / "all.parquet"
    assert main(["export", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert "parquet" in capsys.readouterr().out
    table = pd.read_parquet(out)
    runs = find_runs([tmp_path / "runs"])
    assert len(table) == sum(len(run.records) for run in runs) == 16
    assert check_round_trip(table, ((str(run.path), as_json(run.manifest), [as_json(r) for r in run.records]) for run in runs)) > 0
    assert table["entry"].isna().all() and set(table["status"]) == {"complete"}
    assert table["metrics.theory_loss"].notna().all()
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "runs"), "--format", "xlsx", "--out", str(out)])


def test_export_refuses_paths_without_results(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "no run directories and no submission files" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_the_python_api_runs_a_strategy_and_loads_results(tmp_path):
    frame = collapselab.run(task="linear_regression", strategy="accumulate", seeds="0-1", preset="smoke",
                            generations=2, out=tmp_path / "runs")
    assert len(frame) == 2 * 3 and sorted(set(frame["seed"])) == [0, 1]
    runs = find_runs([tmp_path / "runs"])
    assert sorted(frame["metrics.loss"]) == sorted(r.metrics["loss"] for run in runs for r in run.records)
    again = collapselab.load_results(tmp_path / "runs")
    pd.testing.assert_frame_equal(frame, again)
    both = collapselab.load_results(tmp_path / "runs", SUBMISSIONS / "replace.json")
    assert set(both["entry"].dropna()) == {"replace"} and len(both) > len(frame)
    assert collapselab.describe_task("linear_regression")["presets"]["smoke"]["generations"] == 3
    assert collapselab.describe_strategy("mix")["parameters"] == {"real_fraction": 0.5}


def test_import_collapselab_stays_light():
    code = "import sys, collapselab; print('pandas' in sys.modules, 'collapselab.operations.results.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    with pytest.raises(AttributeError):
        collapselab.no_such_thing


@pytest.fixture(scope="module")
def smoke_entries(tmp_path_factory):
    from tests.entries import make_entries, write_all

    root = tmp_path_factory.mktemp("scores")
    entries = make_entries(root, {"replace": "replace", "mix": "mix", "accumulate": "accumulate"})
    return root, entries, write_all(root / "submissions", list(entries.values()))


def test_export_scores_gives_the_leaderboards_score_and_interval_per_entry_and_task(smoke_entries, tmp_path, capsys):
    from collapselab.leaderboard import aggregate

    _, entries, folder = smoke_entries
    out = tmp_path / "scores.csv"
    assert main(["export", str(folder), "--scores", "--out", str(out)]) == 0
    assert "3 rows (one per task and strategy or entry)" in capsys.readouterr().out
    table = pd.read_csv(out).set_index("entry")
    board = {row["name"]: row for row in aggregate.aggregate(entries)["entries"]}
    for name in entries:
        ours, theirs = table.loc[name], board[name]["tasks"]["linear_regression"]
        assert ours["task"] == "linear_regression" and ours["track"] == theirs["track"] and ours["seeds"] == 3
        assert ours["synthetic_share"] == pytest.approx(theirs["synthetic_share"], rel=1e-12)
        for ci in ("mean", "ci_low", "ci_high"):
            column = "score" if ci == "mean" else f"score_{ci}"
            assert ours[column] == pytest.approx(theirs["score"][ci], rel=1e-12, abs=1e-12), (name, ci)
    assert table.loc["replace", "score"] == 0.0 and table.loc["mix", "strategy"] == "mix[real_fraction=0.5]"


def test_report_reads_submission_files_beside_local_runs(smoke_entries, tmp_path, capsys):
    from tests.entries import runs_root

    root, _, folder = smoke_entries
    local = next((runs_root(root) / "linear_regression").glob("mix*"))
    assert main(["report", str(folder / "replace.json"), str(folder / "mix.json"), str(local),
                 "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    summary = out[out.rindex("\nsummary\n"):out.rindex("collapse profile")]
    # the published mix and the local runs of mix stay two rows; both are scored against the published replace
    assert "mix[real_fraction=0.5] (entry mix)" in summary
    local_row = next(line for line in summary.splitlines() if line.startswith("mix[real_fraction=0.5] ") and "entry" not in line)
    entry_row = next(line for line in summary.splitlines() if "(entry mix)" in line)
    # the same code and seeds: the local runs' numbers are the entry's, score included
    assert local_row.removeprefix("mix[real_fraction=0.5]").split() == entry_row.split("(entry mix)")[1].split()
    assert "0.000 [0.000, 0.000]" not in local_row and "[" in local_row.split("]", 1)[1]
