"""``collapselab reproduce``: a published baseline re-runs to PASS; tampered numbers FAIL."""

from __future__ import annotations

import json
import math

import pytest

from collapselab.cli.main import main
from collapselab.leaderboard import SUBMISSIONS
from collapselab.operations import reproduce

TASK = "linear_regression"


def test_tolerance_comes_from_the_published_seed_spread():
    assert reproduce.tolerance([1.0, 2.0, 3.0], 3) == pytest.approx(3.0 * 1.0 * math.sqrt(2 / 3))
    assert reproduce.tolerance([2.0, 2.0, 2.0], 1) == pytest.approx(2e-9)  # no spread: only rounding passes
    allowed = 3.0 * math.sqrt(1 / 3 + 1)  # one reproduced seed against three published ones
    assert reproduce.Check(TASK, "L_G", [1.0, 2.0, 3.0], [2.0 + 0.99 * allowed]).passed
    assert not reproduce.Check(TASK, "L_G", [1.0, 2.0, 3.0], [2.0 - 1.01 * allowed]).passed


def test_reproduce_uses_the_published_thread_count_when_the_runs_agree():
    entry = json.loads((SUBMISSIONS / "replace.json").read_text())
    runs = entry["tasks"][TASK]["runs"]
    for run in runs:
        run["manifest"]["environment"].update(omp_num_threads="1", torch_threads=2)
    assert reproduce.published_threads(entry, [TASK]) == 1
    runs[0]["manifest"]["environment"].update(omp_num_threads=None, torch_threads=None)  # recorded nothing
    assert reproduce.published_threads(entry, [TASK]) == 1
    runs[0]["manifest"]["environment"]["omp_num_threads"] = "2"
    assert reproduce.published_threads(entry, [TASK]) is None
    for run in runs:
        run["manifest"]["environment"]["omp_num_threads"] = None
    assert reproduce.published_threads(entry, [TASK]) == 2


@pytest.fixture(scope="module")
def reruns(tmp_path_factory):
    return tmp_path_factory.mktemp("reproduce")


def test_reproduce_a_published_baseline_passes_with_identical_curves(reruns, capsys):
    assert main(["reproduce", "replace", "--tasks", TASK, "--seeds", "0", "--out", str(reruns), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "same seeds: 1/1 curves identical, largest |difference| 0" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(TASK) and line.split()[-1] in ("PASS", "FAIL")]
    assert [row[1] for row in rows] == ["L_0", "L_G", "L_G/L_0"] and all(row[-1] == "PASS" for row in rows)
    assert out.rstrip().endswith("PASS")


def test_reproduce_fails_when_the_published_numbers_are_off(reruns, tmp_path, capsys):
    entry = json.loads((SUBMISSIONS / "replace.json").read_text())
    for run in entry["tasks"][TASK]["runs"]:
        run["records"][-1]["metrics"]["loss"] *= 1.5
    tampered = tmp_path / "replace.json"
    tampered.write_text(json.dumps(entry))
    assert main(["reproduce", str(tampered), "--tasks", TASK, "--seeds", "0", "--out", str(reruns), "--no-progress"]) == 1
    out = capsys.readouterr().out
    verdicts = {line.split()[1]: line.split()[-1] for line in out.splitlines()
                if line.startswith(TASK) and line.split()[-1] in ("PASS", "FAIL")}
    assert verdicts == {"L_0": "PASS", "L_G": "FAIL", "L_G/L_0": "FAIL"}
    assert out.rstrip().endswith("FAIL")


def test_reproduce_names_unknown_entries():
    with pytest.raises(Exception, match="no published entry 'nope'.*entries: .*replace"):
        reproduce.resolve("nope", SUBMISSIONS)
