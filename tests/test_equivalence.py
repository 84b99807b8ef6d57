"""The code-equivalence ledger: task code that changed without moving a number keeps its sections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collapselab.cli.main import main as cli
from collapselab.engine import rundir
from collapselab.formats.records import RunError
from collapselab.leaderboard import code_versions, equivalence
from collapselab.leaderboard.equivalence import Evidence, Ledger, Link

SUBMISSIONS = Path(__file__).resolve().parents[1] / "leaderboard" / "submissions"


def _link(task: str, version: str, old: str, new: str, strategies: list[str]) -> Link:
    evidence = Evidence(preset="cpu", generations=2, seeds=[0], strategies=strategies, runs=len(strategies), values=10,
                        numerics="openblas SkylakeX, 1 thread(s)")
    return Link(task=task, version=version, from_source_sha256=old, to_source_sha256=new,
                from_commit="a" * 40, to_commit="b" * 40, evidence=evidence)


A, B, C, D = ("a" * 64), ("b" * 64), ("c" * 64), ("d" * 64)


def test_a_path_of_links_covers_the_strategies_every_link_on_it_ran():
    ledger = Ledger(links=[_link("t", "1", A, B, ["replace", "accumulate"]), _link("t", "1", B, C, ["replace"]),
                           _link("t", "2", C, D, ["replace"]), _link("t", "1", A, C, ["mix"])])
    assert equivalence.covered("t", "1", A, B, ledger) == {"replace", "accumulate"}
    assert equivalence.covered("t", "1", A, C, ledger) == {"replace", "mix"}  # two paths: each covers its own
    assert equivalence.covered("t", "1", C, D, ledger) is None  # a link of another version says nothing
    assert equivalence.covered("t", "1", B, A, ledger) is None  # links have a direction
    assert equivalence.covered("u", "1", A, B, ledger) is None


def test_a_section_of_other_task_code_is_refused_unless_a_link_covers_its_strategy(monkeypatch):
    entry = json.loads((SUBMISSIONS / "replace.json").read_text())
    section = entry["tasks"]["linear_regression"]
    installed = code_versions.installed_task_sha256("linear_regression")
    for run in section["runs"]:
        run["manifest"]["task"]["source_sha256"] = A
    version = section["version"]
    cases = {
        "no ledger": Ledger(links=[]),
        "another strategy": Ledger(links=[_link("linear_regression", version, A, installed, ["accumulate"])]),
        "another version": Ledger(links=[_link("linear_regression", version + ".9", A, installed, ["replace"])]),
        "linked": Ledger(links=[_link("linear_regression", version, A, B, ["replace", "mix"]),
                                _link("linear_regression", version, B, installed, ["replace"])]),
    }
    verdicts = {}
    for case, ledger in cases.items():
        monkeypatch.setattr(equivalence, "read", lambda ledger=ledger: ledger)
        verdicts[case] = code_versions.task_code_problem("linear_regression", section, "f")
    assert verdicts["linked"] is None
    for case in ("no ledger", "another strategy", "another version"):
        assert "no link of the code-equivalence ledger vouches for it" in verdicts[case], case


def _runs(root: Path, side: str, code: str, commit: str) -> list[rundir.Run]:
    """The README's task, from a file of ``code``, run with replace and accumulate (seed 0, smoke);
    the manifests then say what a clean checkout of ``commit`` would have recorded."""
    folder = root / side
    folder.mkdir()
    (folder / "my_task.py").write_text(code)
    for strategy in ("replace", "accumulate"):
        assert cli(["run", "--task", f"{folder}/my_task.py:MyTask", "--strategy", strategy, "--preset", "smoke",
                    "--seeds", "0", "--out", str(folder / "runs"), "--no-progress"]) == 0
    for path in (folder / "runs").rglob(rundir.MANIFEST):
        manifest = json.loads(path.read_text())
        manifest["environment"].update(dirty=False, git_commit=commit * 40)
        path.write_text(json.dumps(manifest))
    return rundir.find_runs([folder / "runs"])


@pytest.fixture(scope="module")
def sides(tmp_path_factory) -> tuple[Path, dict[str, list[rundir.Run]]]:
    """The same runs of the README's task by three commits: the original, a renamed method (no number
    moves), and another floor probability (every loss moves)."""
    from tests.test_readme import README, runnable_blocks

    code = dict(runnable_blocks(README.read_text()))["my_task.py"]
    root = tmp_path_factory.mktemp("equivalence")
    return root, {
        "old": _runs(root, "old", code, "1"),
        "renamed": _runs(root, "renamed", code.replace("_scores(", "_scored("), "2"),
        "moved": _runs(root, "moved", code.replace("FLOOR = 1e-6", "FLOOR = 2e-6"), "3"),
    }


def test_the_same_runs_of_two_commits_link_only_when_every_value_agrees(sides, tmp_path, capsys):
    root, runs = sides
    old, renamed = runs["old"], runs["renamed"]
    link, problems = equivalence.compare(old, renamed)
    assert problems == [] and link is not None
    assert link.from_source_sha256 == old[0].manifest.task.source_sha256 != link.to_source_sha256
    assert link.evidence.strategies == ["accumulate", "replace"] and link.evidence.runs == 2
    assert link.evidence.values > 2 * 4 * 5  # every field of every record of both runs, not only the loss

    link, problems = equivalence.compare(old, runs["moved"])
    assert link is None
    assert any("generation 0, metrics/loss: old" in line for line in problems)

    link, problems = equivalence.compare(old, [r for r in renamed if r.manifest.strategy.spec == "replace"])
    assert link is None and problems == ["accumulate seed 0: 1 old and 0 new runs (one each needed)"]

    ledger = tmp_path / "code_equivalence.json"
    args = [str(root / "old" / "runs"), str(root / "renamed" / "runs"), "--record", "--ledger", str(ledger)]
    assert equivalence.main(args) == 0 and equivalence.main(args) == 0
    assert "EQUIVALENT: my_task 1.0" in capsys.readouterr().out
    assert len(equivalence.read(ledger).links) == 1  # recorded once
    assert equivalence.main([str(root / "old" / "runs"), str(root / "moved" / "runs")]) == 1


def _with(run: rundir.Run, **changes: object) -> rundir.Run:
    """``run`` with manifest fields changed (in memory)."""
    return rundir.Run(run.path, run.manifest.model_copy(update=changes), run.records)


def test_model_file_hashes_and_timings_may_differ_and_nothing_else(sides):
    _, runs = sides

    def edited(runs: list[rundir.Run], group: str, name: str) -> list[rundir.Run]:
        out = []
        for run in runs:
            records = [r.model_copy(update={group: {**getattr(r, group), name: "0" * 64 if group == "checksums" else 1e9}})
                       for r in run.records]
            out.append(rundir.Run(run.path, run.manifest, records))
        return out

    assert equivalence.compare(runs["old"], edited(runs["renamed"], "seconds", "fit"))[0] is not None
    assert equivalence.compare(runs["old"], edited(runs["renamed"], "checksums", "models/gen-0000.model"))[0] is not None
    link, problems = equivalence.compare(runs["old"], edited(runs["renamed"], "checksums", "pools/gen-0001.npz"))
    assert link is None and any("checksums/pools/gen-0001.npz" in line for line in problems)


def test_artifact_files_are_compared_byte_for_byte(sides):
    _, runs = sides

    def with_artifact(runs: list[rundir.Run], text: str) -> list[rundir.Run]:
        out = []
        for run in runs:
            (run.path / "artifacts").mkdir(exist_ok=True)
            (run.path / "artifacts" / "samples-gen-0000.txt").write_text(text)
            records = [run.records[0].model_copy(update={"artifacts": ["artifacts/samples-gen-0000.txt"]}), *run.records[1:]]
            out.append(rundir.Run(run.path, run.manifest, records))
        return out

    old = with_artifact(runs["old"], "--- sample 0 ---\nabc\n")
    assert equivalence.compare(old, with_artifact(runs["renamed"], "--- sample 0 ---\nabc\n"))[0] is not None
    link, problems = equivalence.compare(old, with_artifact(runs["renamed"], "--- sample 0 ---\nabd\n"))
    assert link is None and any("artifact artifacts/samples-gen-0000.txt: the files differ" in line for line in problems)


def test_runs_that_failed_alike_on_both_sides_are_left_out_of_the_evidence(sides):
    def failed(runs: list[rundir.Run]) -> list[rundir.Run]:
        error = RunError(generation=1, message="reserve too small", type="TaskError", traceback="")
        return [_with(r, status="failed", error=error) if r.manifest.strategy.spec == "replace" else r for r in runs]

    _, runs = sides
    link, problems = equivalence.compare(failed(runs["old"]), failed(runs["renamed"]))
    assert problems == [] and link is not None
    assert link.evidence.strategies == ["accumulate"] and link.evidence.runs == 1  # no evidence for replace
    link, problems = equivalence.compare(failed(runs["old"]), runs["renamed"])  # failed on one side only
    assert link is None and len(problems) == 1 and problems[0].startswith("replace seed 0: old ('failed', 1,")


def test_a_run_from_a_dirty_checkout_is_no_evidence(sides):
    _, runs = sides
    dirty = [_with(r, environment={**r.manifest.environment, "dirty": True}) for r in runs["old"]]
    with pytest.raises(Exception, match="not made from a clean git checkout"):
        equivalence.compare(dirty, runs["renamed"])


def test_the_committed_ledger_reads_back_as_it_is_written():
    if not equivalence.LEDGER.is_file():
        pytest.skip("no code-equivalence ledger committed")
    ledger = equivalence.read()
    assert equivalence.LEDGER.read_text() == ledger.model_dump_json(indent=1) + "\n"
    assert all(link.from_source_sha256 != link.to_source_sha256 for link in ledger.links)


def test_the_same_weights_make_the_same_model_file_whatever_its_name(tmp_path):
    torch = pytest.importorskip("torch")
    from collapselab.toolkit.training import load_state, save_state

    module = torch.nn.Linear(4, 3)
    save_state(module, tmp_path / ".gen-0001.model.a1b2.tmp")
    save_state(module, tmp_path / "gen-0001.model")
    assert (tmp_path / ".gen-0001.model.a1b2.tmp").read_bytes() == (tmp_path / "gen-0001.model").read_bytes()
    again = load_state(torch.nn.Linear(4, 3), tmp_path / "gen-0001.model")
    assert torch.equal(again.weight, module.weight) and torch.equal(again.bias, module.bias)
