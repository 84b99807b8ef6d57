"""tests/perf/bench_board_cost.py reads the same timings from a run it makes and from a published entry.

The script is what the closing notes quote for the board's cost; a change to how runs are read
(the records became typed models) once broke its measuring mode while its entry-reading mode kept
working. Both modes run here on the regression task, whose runs take a second.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.perf.bench_board_cost import main

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "leaderboard" / "submissions" / "replace.json"


def _report(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["--tasks", "linear_regression", "--json", str(out), *args]) == 0
    return json.loads(out.read_text())


def test_measured_and_recorded_timings_project_the_same_board(tmp_path: Path) -> None:
    measured = _report(tmp_path, "measured", "--generations", "1")
    recorded = _report(tmp_path, "recorded", "--records", str(ENTRY))
    published = json.loads(ENTRY.read_text())["tasks"]["linear_regression"]["runs"]

    one = measured["tasks"]["linear_regression"]
    assert one["costs"]["replace"]["runs"] == 1 and one["costs"]["replace"]["generations"] == 1
    assert sum(one["costs"]["replace"]["generation"].values()) > 0

    assert len(one["costs"]["replace"]["machines"]) == 1  # this machine: its CPU and BLAS kernel

    entry = recorded["tasks"]["linear_regression"]
    assert entry["costs"]["replace"]["machines"] == sorted(
        {f"{run['manifest']['environment']['cpu']}, {run['manifest']['environment']['blas_kernel'].split()[-1]}"
         for run in published})
    assert entry["costs"]["replace"]["runs"] == len(published)
    synthetic = sum(len(run["records"]) - 1 for run in published)
    assert entry["costs"]["replace"]["generations"] == synthetic

    # the same board either way: every shipped entry that applies, on the task's leaderboard seeds
    assert one["board_runs"] == entry["board_runs"] > len(published)
    assert one["not_applicable"] == entry["not_applicable"]
    for report in (measured, recorded):
        assert report["board_wall_seconds"] > 0 and 0 < report["submission_wall_seconds"] <= report["board_wall_seconds"]
