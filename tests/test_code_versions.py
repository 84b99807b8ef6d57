"""Versions that move with the numbers: manifests record the task's source hash and whether the
checkout was dirty, and the leaderboard refuses entries whose code is not the installed code."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from collapselab.contracts import registry
from collapselab.engine import sources
from collapselab.engine.rundir import read_manifest
from collapselab.errors import RunConflictError
from collapselab.formats import submission
from collapselab.leaderboard import aggregate, code_versions, rules, site, validate
from tests.entries import SMOKE, make_entries, write_all
from tests.helpers import run_strategy

TASK = "linear_regression"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """replace and mix on the regression task, seeds 0-2, smoke preset."""
    return make_entries(tmp_path_factory.mktemp("code-versions"), {"replace": "replace", "mix": "mix"})


def _runs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return entry["tasks"][TASK]["runs"]


def _check(tmp_path: Path, made: dict[str, dict[str, Any]], mix: dict[str, Any]) -> tuple[list[str], bool]:
    folder = write_all(tmp_path / "subs", [made["replace"], mix])
    return validate.check_files([folder / "mix.json"], SMOKE, {"replace": made["replace"]})


def test_manifests_record_the_task_source_hash_and_the_tree_state(made):
    installed = sources.task_source_sha256(registry.task_class(TASK))
    for run in _runs(made["mix"]):
        assert run["manifest"]["task"]["source_sha256"] == installed
        assert "dirty" in run["manifest"]["environment"]  # null here: the suite's git stops at the checkout


def test_entries_of_the_installed_code_pass(made, tmp_path):
    lines, ok = _check(tmp_path, made, made["mix"])
    assert ok, lines
    assert not any("flagged" in line for line in lines)


def test_validate_refuses_task_code_changed_without_a_version_bump(made, tmp_path):
    mix = copy.deepcopy(made["mix"])
    for run in _runs(mix):
        assert run["manifest"]["task"]["version"] == registry.task_class(TASK).version
        run["manifest"]["task"]["source_sha256"] = "0" * 64
    lines, ok = _check(tmp_path, made, mix)
    assert not ok
    assert any("manifest/task/source_sha256" in line and "without a version bump" in line for line in lines), lines
    assert TASK in rules.stale_sections(mix, "smoke")  # --drop-stale removes such a section too


def test_validate_refuses_an_entry_made_from_a_dirty_checkout(made, tmp_path):
    mix = copy.deepcopy(made["mix"])
    _runs(mix)[1]["manifest"]["environment"].update(dirty=True, git_commit="a" * 40)
    lines, ok = _check(tmp_path, made, mix)
    assert not ok
    assert any("runs/1/manifest/environment/dirty" in line and "uncommitted changes" in line for line in lines), lines


def test_unknown_tree_state_is_accepted(made, tmp_path):
    mix = copy.deepcopy(made["mix"])
    for run in _runs(mix):
        run["manifest"]["environment"]["dirty"] = None
    _runs(mix)[0]["manifest"]["environment"].pop("dirty")
    lines, ok = _check(tmp_path, made, mix)
    assert ok, lines


def test_an_entry_made_before_the_task_hash_is_flagged_not_refused(made, tmp_path):
    mix = copy.deepcopy(made["mix"])
    for run in _runs(mix):
        del run["manifest"]["task"]["source_sha256"]
    lines, ok = _check(tmp_path, made, mix)
    assert ok, lines
    assert any(line.startswith("  flagged: linear_regression: made before task code was hashed") for line in lines), lines
    board = aggregate.aggregate({"replace": made["replace"], "mix": mix})
    rows = {row["name"]: row for row in board["entries"]}
    assert rows["mix"]["flags"] and not rows["replace"]["flags"]
    out = tmp_path / "site"
    site.build(out, tmp_path / "subs", SMOKE, date="2025-01-01")
    page = (out / "index.html").read_text()
    assert page.count("code unverified") == 1 and "made before task code was hashed" in page


def test_a_section_of_other_task_code_linked_by_the_ledger_is_accepted_and_says_so_on_the_site(made, tmp_path,
                                                                                                 monkeypatch):
    from collapselab.leaderboard import equivalence

    mix = copy.deepcopy(made["mix"])
    installed = code_versions.installed_task_sha256(TASK)
    for run in _runs(mix):
        run["manifest"]["task"]["source_sha256"] = "e" * 64
    lines, ok = _check(tmp_path, made, mix)
    assert not ok and any("no link of the code-equivalence ledger vouches for it" in line for line in lines), lines
    evidence = equivalence.Evidence(preset="smoke", generations=2, seeds=[0], strategies=["mix"], runs=1, values=9,
                                    numerics="openblas SkylakeX, 1 thread(s)")
    link = equivalence.Link(task=TASK, version=mix["tasks"][TASK]["version"], from_source_sha256="e" * 64,
                            to_source_sha256=installed, from_commit="1" * 40, to_commit="2" * 40, evidence=evidence)
    monkeypatch.setattr(equivalence, "read", lambda: equivalence.Ledger(links=[link]))
    lines, ok = _check(tmp_path / "again", made, mix)
    assert ok, lines
    rows = {row["name"]: row for row in aggregate.aggregate({"replace": made["replace"], "mix": mix})["entries"]}
    assert rows["mix"]["code_links"] and not rows["replace"]["code_links"] and not rows["mix"]["flags"]
    site.build(tmp_path / "site", tmp_path / "again" / "subs", SMOKE, date="2025-01-01")
    page = (tmp_path / "site" / "index.html").read_text()
    assert page.count("code-equivalence ledger shows they compute the same numbers") == 1
    assert "the same runs of commits 111111111111 and 222222222222" in page


def test_validate_refuses_a_shipped_baseline_whose_code_changed(made, tmp_path):
    mix = copy.deepcopy(made["mix"])
    installed = registry.source_sha256(registry.strategy_class("mix"))
    assert _runs(mix)[0]["manifest"]["strategy"]["source_sha256"] == installed
    for run in _runs(mix):
        run["manifest"]["strategy"]["source_sha256"] = "f" * 64
    lines, ok = _check(tmp_path, made, mix)
    assert not ok
    assert any("the baseline's code changed since its entry was made" in line for line in lines), lines


def test_seeds_run_with_different_task_code_are_not_one_entry(made):
    mix = copy.deepcopy(made["mix"])
    _runs(mix)[2]["manifest"]["task"]["source_sha256"] = "1" * 64
    found = submission.structure_problems(mix, "mix.json")
    assert any("different task code" in problem for problem in found), found


def test_flags_list_a_shipped_baseline_without_a_source_hash(made):
    mix = copy.deepcopy(made["mix"])
    for run in _runs(mix):
        run["manifest"]["strategy"]["source_sha256"] = None
    assert any("no strategy source hash" in flag for flag in code_versions.flags(mix))


def test_resume_refuses_changed_task_code_and_keeps_a_dirty_flag(tmp_path):
    run = run_strategy(tmp_path, TASK, "replace", generations=1)
    manifest = read_manifest(run.path)
    manifest.environment["dirty"] = True
    (run.path / "manifest.json").write_text(manifest.model_dump_json())
    extended = run_strategy(tmp_path, TASK, "replace", generations=2)
    assert extended.manifest.environment["dirty"] is True  # one dirty session makes the run dirty
    manifest = read_manifest(run.path)
    manifest.task.source_sha256 = "2" * 64
    (run.path / "manifest.json").write_text(manifest.model_dump_json())
    with pytest.raises(RunConflictError, match="task source"):
        run_strategy(tmp_path, TASK, "replace", generations=3)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo, check=True,
                   capture_output=True)


def test_tree_dirty_reads_the_checkout_of_the_given_folders(tmp_path):
    repo = tmp_path / "repo"
    package, ignored = repo / "pkg", repo / "venv" / "pkg"
    package.mkdir(parents=True)
    ignored.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (ignored / "a.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("venv/\n")
    assert sources.tree_dirty([package]) is None  # not a git checkout yet
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    assert sources.tree_dirty([package]) is False
    assert sources.tree_dirty([ignored]) is None  # no file of the checkout: unknown, not clean
    (repo / "elsewhere.txt").write_text("outside the package\n")
    assert sources.tree_dirty([package]) is False
    (package / "b.py").write_text("y = 2\n")
    assert sources.tree_dirty([package]) is True  # untracked files count
    (package / "b.py").unlink()
    (package / "a.py").write_text("x = 2\n")
    assert sources.tree_dirty([package]) is True
