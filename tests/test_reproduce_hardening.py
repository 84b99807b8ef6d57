"""``reproduce`` cannot be steered by what a submitter publishes: re-run seeds are compared each on
its own to the machine's tolerance, with their composition, compute and track; the published
seed-to-seed spread never sets a tolerance."""

from __future__ import annotations

import copy
import json

import pytest

from collapselab.leaderboard import SUBMISSIONS
from collapselab.operations.publishing import reproduce
from tests.entries import TASK, make_entries


def committed(name: str) -> dict:
    """A committed entry cut to its linear_regression section (seconds to re-run)."""
    entry = json.loads((SUBMISSIONS / f"{name}.json").read_text())
    entry["tasks"] = {TASK: entry["tasks"][TASK]}
    return entry


def run(entry: dict, tmp_path, seeds=None) -> tuple[str, bool]:
    path = tmp_path / f"{entry['name']}.json"
    path.write_text(json.dumps(entry))
    return reproduce.reproduce(path, [TASK], seeds, tmp_path / "runs", progress=False)


def test_flattened_and_scaled_seeds_fail_seed_by_seed(tmp_path):
    entry = committed("mix")
    runs = entry["tasks"][TASK]["runs"]
    for forged in runs[:2]:  # flat: no degradation at all
        for record in forged["records"]:
            record["metrics"]["loss"] = forged["records"][0]["metrics"]["loss"]
    for record in runs[2]["records"][1:]:
        record["metrics"]["loss"] *= 0.9
    report, ok = run(entry, tmp_path, seeds=[0, 1, 2])  # the forged seeds (the others would pass)
    assert not ok and report.endswith("FAIL")
    lines = report.splitlines()
    assert any(line.startswith("  MISMATCH seed 0, generation 1, metrics/loss: published 0.10682982537") for line in lines)
    assert any(line.startswith("  MISMATCH seed 1, generation 10, metrics/loss") for line in lines)
    assert "  ... and 10 more mismatches" in lines  # seed 2's ten generations, counted
    rows = {line.split()[1]: line.split() for line in lines if line.startswith(TASK) and line.split()[2] == "per"}
    assert rows["L_0"][-1] == "PASS" and rows["area"][-1] == "FAIL" and rows["L_G"][-1] == "FAIL"


def test_fresh_real_data_hidden_from_the_composition_fails(tmp_path):
    entry = committed("fresh-real")
    entry["strategy"]["uses_extra_real_data"] = False
    for seed_run in entry["tasks"][TASK]["runs"]:
        seed_run["manifest"]["strategy"]["uses_extra_real_data"] = False
        for record in seed_run["records"]:
            record["composition"]["fresh_real"] = 0
    report, ok = run(entry, tmp_path, seeds=[0])
    assert not ok
    assert "  MISMATCH track: published 'augmentation', reproduced 'fresh-data'" in report
    assert "  MISMATCH seed 0, strategy/uses_extra_real_data: published False, reproduced True" in report
    assert "  MISMATCH seed 0, generation 1, composition/fresh_real: published 0, reproduced 50" in report
    assert "metrics/loss" not in report  # the losses themselves were left as they are


@pytest.fixture(scope="module")
def replace(tmp_path_factory):
    return make_entries(tmp_path_factory.mktemp("entries"), {"replace": "replace"})["replace"]


def test_composition_and_compute_are_compared_field_by_field(replace, tmp_path):
    entry = copy.deepcopy(replace)
    record = entry["tasks"][TASK]["runs"][0]["records"][2]
    record["compute"]["examples"] += 1
    record["composition"]["synthetic"] = {"1": 3, **record["composition"]["synthetic"]}
    report, ok = run(entry, tmp_path, seeds=[0, 1])
    assert not ok
    expected = replace["tasks"][TASK]["runs"][0]["records"][2]["compute"]["examples"]
    assert (f"  MISMATCH seed 0, generation 2, compute/examples: published {expected + 1}, reproduced {expected}"
            in report)
    assert "  MISMATCH seed 0, generation 2, composition/synthetic/1: published 3, reproduced None" in report
    assert "seed 1," not in report  # seed 1 untouched


def test_an_honest_re_run_passes_seed_by_seed(replace, tmp_path):
    report, ok = run(replace, tmp_path, seeds=[0, 1])
    assert ok, report
    assert "MISMATCH" not in report and "same seeds: 2/2 curves identical" in report


def test_the_published_spread_never_widens_the_tolerance():
    # a forger's seeds spread wide; two honest new seeds spread narrow: the tolerance is theirs
    published = {0: [1.0, 1.0], 1: [1.0, 9.0], 2: [1.0, 5.0]}
    checks = {c.metric: c for c in reproduce.compare(TASK, published, {5: [1.0, 2.0], 6: [1.0, 2.1]})}
    assert not checks["L_G"].paired and not checks["L_G"].passed
    assert checks["L_G"].tolerance == pytest.approx(3.0 * 0.0707107 * (1 / 3 + 1 / 2) ** 0.5, rel=1e-5)
    # the same seeds: each on its own, the tolerance a relative 1e-9 (bit for bit on the same kernel)
    checks = {c.metric: c for c in reproduce.compare(TASK, published, {1: [1.0, 9.0 * (1 + 1e-7)]})}
    assert checks["L_G"].paired and not checks["L_G"].passed and checks["L_0"].passed
    checks = {c.metric: c for c in reproduce.compare(TASK, published, {1: [1.0, 9.0 * (1 + 1e-12)]}, {1: 0.0})}
    assert not checks["L_G"].passed
    checks = {c.metric: c for c in reproduce.compare(TASK, published, {1: [1.0, 9.0 * (1 + 1e-12)]})}
    assert all(c.passed for c in checks.values())
