"""The pull-request check (``collapselab leaderboard check-pr``): nothing a submission contains
can switch it off, a strategy spec is used only when it is a plain relative file inside the
checkout, and it fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collapselab.errors import CollapseLabError
from collapselab.leaderboard import pr_check
from tests.entries import SMOKE, TASK, make_entries
from tests.test_workflow import git, pull_request, run_step, steps

SUBMISSIONS = Path("leaderboard") / "submissions"
MARKER_PLUGIN = """from pathlib import Path
Path(__file__).with_name("imported").touch()
from collapselab import Strategy


class C(Strategy):
    name = "forged"
    parameters = {"real_fraction": 0.5}

    def training_pool(self, ctx):
        return ctx.latest
"""
WINDOW_PLUGIN = """from collapselab import Pool, Strategy


class Window(Strategy):
    \"\"\"The real pool and the latest synthetic generation.\"\"\"

    name = "window"
    citation = "CollapseLab test plugin"

    def training_pool(self, ctx):
        return Pool.concat([ctx.real, ctx.latest])
"""


def forge(repo: Path, spec: str) -> None:
    """A pull request adding ``forged.json``: the committed mix entry under a strategy that is not
    installed, its recorded spec ``spec``, its curves flat (a score of 1), and ``a.py``."""
    entry = json.loads((repo / SUBMISSIONS / "mix.json").read_text())
    entry["name"] = entry["strategy"]["name"] = "forged"
    for run in entry["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"].update(name="forged", spec=spec)
        for record in run["records"]:
            record["metrics"]["loss"] = run["records"][0]["metrics"]["loss"]
    (repo / SUBMISSIONS / "forged.json").write_text(json.dumps(entry))
    (repo / "a.py").write_text(MARKER_PLUGIN)


def test_a_forged_spec_cannot_switch_the_check_off(tmp_path):
    repo, base = pull_request(tmp_path, lambda r: forge(r, "a.py:C --help"))
    out = run_step(steps()["check-pr"], repo, {"BASE": base}, succeeds=False)
    assert "ok      leaderboard/submissions/forged.json: entry 'forged'" in out  # well-formed ...
    assert "recorded spec 'a.py:C --help' is not a relative path/to/file.py:ClassName" in out  # ... but not reproducible
    assert "FAIL: 1 submission(s) changed and none was reproduced" in out and out.rstrip().endswith("FAIL")
    assert "usage:" not in out and not (repo / "imported").exists()


def test_a_well_formed_spec_runs_the_file_and_the_forged_curves_fail(tmp_path):
    repo, base = pull_request(tmp_path, lambda r: forge(r, "a.py:C"))
    lines, ok = pr_check.check(base, repo)
    text = "\n".join(lines)
    assert not ok and (repo / "imported").exists()
    assert "MISMATCH seed 0, generation 1, metrics/loss" in text and text.endswith("FAIL")


@pytest.mark.parametrize("spec", [
    "a.py:C --help", "a.py:C;touch x", "a.py:C[k=$(id)]", "a.py:C[k=1] x", "/tmp/a.py:C", "../a.py:C",
    "sub/../a.py:C", "./a.py:C", "sub//a.py:C", "-a.py:C", "a.py:1C", "a.py", "a.pyc:C", "a.py:C\n", "a b.py:C",
])
def test_only_plain_relative_specs_inside_the_checkout_are_used(tmp_path, spec):
    (tmp_path / "a.py").write_text(MARKER_PLUGIN)
    entry = {"strategy": {"name": "forged"}, "tasks": {TASK: {"runs": [{"manifest": {"strategy": {"spec": spec}}}]}}}
    with pytest.raises(CollapseLabError):
        pr_check.strategy_file(entry, tmp_path)
    assert not (tmp_path / "imported").exists()


def test_a_link_out_of_the_checkout_is_not_a_strategy_file(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text(MARKER_PLUGIN)
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "a.py").symlink_to(outside)
    (repo / "b.py").write_text(MARKER_PLUGIN)

    def entry(spec):
        return {"strategy": {"name": "forged"}, "tasks": {TASK: {"runs": [{"manifest": {"strategy": {"spec": spec}}}]}}}

    with pytest.raises(CollapseLabError, match="not a regular file inside the checkout"):
        pr_check.strategy_file(entry("sub/a.py:C"), repo)
    assert pr_check.strategy_file(entry("b.py:C[k=1,x=-2.5e-3]"), repo) == f"{(repo / 'b.py').resolve()}:C"
    assert pr_check.strategy_file({**entry("b.py:C"), "strategy": {"name": "mix"}}, repo) is None  # installed


def test_an_entry_without_a_regression_section_fails_the_check(tmp_path):
    def change(repo: Path) -> None:
        entry = json.loads((repo / SUBMISSIONS / "mix.json").read_text())
        entry["name"], entry["tasks"] = "no-regression", {"mnist_vae": entry["tasks"][TASK]}
        (repo / SUBMISSIONS / "no-regression.json").write_text(json.dumps(entry))

    repo, base = pull_request(tmp_path, change)
    lines, ok = pr_check.check(base, repo)
    assert not ok and lines[-2:] == ["FAIL: 1 submission(s) changed and none was reproduced", "FAIL"]


def test_base_and_out_are_checked_and_nothing_changed_passes(tmp_path):
    repo, base = pull_request(tmp_path, lambda r: (r / "README").write_text("docs only\n"))
    assert pr_check.check(base, repo) == (["no new or changed submissions in leaderboard/submissions"], True)
    with pytest.raises(CollapseLabError, match="is not a commit id"):
        pr_check.check("--output=/tmp/x", repo)
    git(repo, "checkout", "-q", "-b", "more")
    forge(repo, "a.py:C")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "forged")
    with pytest.raises(CollapseLabError, match="exists; the re-runs go to a new folder"):
        pr_check.check(base, repo, tmp_path)  # a folder the pull request may have filled with run directories


def test_an_honest_plugin_entry_passes_and_a_touched_seed_fails(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "strategies").mkdir(parents=True)
    (repo / "strategies" / "window.py").write_text(WINDOW_PLUGIN)
    monkeypatch.chdir(repo)  # the spec the runs record is the relative path the submitter typed
    made = make_entries(tmp_path / "made", {"replace": "replace", "window": "strategies/window.py:Window"})
    (repo / SUBMISSIONS).mkdir(parents=True)
    (repo / SUBMISSIONS / "replace.json").write_text(json.dumps(made["replace"]))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "leaderboard")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / SUBMISSIONS / "window.json").write_text(json.dumps(made["window"]))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "window")

    lines, ok = pr_check.check(base, repo, policy=SMOKE)
    assert ok, "\n".join(lines)
    assert "reproduce window (" in "\n".join(lines) and "MISMATCH" not in "\n".join(lines)

    touched = made["window"]
    touched["tasks"][TASK]["runs"][2]["records"][2]["metrics"]["loss"] *= 1.0 + 1e-6
    (repo / SUBMISSIONS / "window.json").write_text(json.dumps(touched))
    git(repo, "commit", "-q", "-am", "touched")
    lines, ok = pr_check.check(base, repo, policy=SMOKE)
    assert not ok and "  MISMATCH seed 2, generation 2, metrics/loss: published" in lines[-2]


def test_a_pull_request_that_changes_submissions_may_not_change_the_code_equivalence_ledger(tmp_path):
    """A link in the ledger would let runs of other task code through validation: a submission cannot bring one."""
    def change(repo: Path) -> None:
        entry = json.loads((repo / SUBMISSIONS / "mix.json").read_text())
        entry["description"] = "the mix entry, described again"
        (repo / SUBMISSIONS / "mix.json").write_text(json.dumps(entry))
        (repo / pr_check.LEDGER).write_text('{"links": []}\n')

    repo, base = pull_request(tmp_path, change)
    out = tmp_path / "re-runs"
    lines, ok = pr_check.check(base, repo, out)
    assert not ok and lines[-1] == "FAIL"
    assert lines[-2].startswith("FAIL: the pull request changes leaderboard/code_equivalence.json beside submissions")
    assert not out.exists()  # nothing re-run: the check fails whatever the numbers
