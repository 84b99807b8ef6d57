"""Submission files: validation rejects every kind of bad entry with the file and the field; submit
builds entries from runs and refuses unfinished or mixed ones; the committed baselines validate."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from collapselab.cli.main import main
from collapselab.engine import rundir as results
from collapselab.errors import SubmissionError
from collapselab.formats import gallery, submission
from collapselab.formats.records import as_json
from collapselab.leaderboard import SUBMISSIONS, baselines, rules, validate
from collapselab.operations.publishing import artifacts, submit
from tests.entries import SMOKE, make_entries, runs_root
from tests.helpers import run_strategy

TASK = "linear_regression"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_entries(tmp_path_factory.mktemp("entries"), {"replace": "replace", "mix": "mix"})


@pytest.fixture
def committed(made):
    """A fresh copy of an entry made from real smoke runs (valid under the smoke-preset rules)."""
    return lambda name="replace": copy.deepcopy(made[name])


def save(tmp_path: Path, data: dict[str, Any], name: str = "entry.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_committed_baseline_entries_validate_and_cover_every_shipped_baseline():
    files = sorted(SUBMISSIONS.glob("*.json"))
    lines, ok = validate.check_files(files)
    assert ok, "\n".join(lines)
    assert {f.stem for f in files} == set(baselines.entries())
    for path in files:
        entry = json.loads(path.read_text())
        assert entry["preset"] == "cpu" and TASK in entry["tasks"]
        assert [run["seed"] for run in entry["tasks"][TASK]["runs"]] == baselines.leaderboard_seeds(TASK)


def _set_seed(data: dict[str, Any], index: int, seed: int) -> None:
    run = data["tasks"][TASK]["runs"][index]
    run["seed"] = run["manifest"]["seed"] = seed


def _records(data: dict[str, Any], run: int = 0) -> list[dict[str, Any]]:
    return data["tasks"][TASK]["runs"][run]["records"]


BAD = {
    "missing field": (lambda d: d.pop("description"), "field (top level): 'description' is a required property"),
    "missing nested field": (
        lambda d: _records(d)[3]["metrics"].pop("loss"),
        f"field tasks/{TASK}/runs/0/records/3/metrics: 'loss' is a required property",
    ),
    "NaN": (lambda d: _records(d)[2]["metrics"].update(loss=float("nan")),
            "invalid JSON: non-finite number NaN"),
    "Infinity": (lambda d: _records(d, 1)[0]["compute"].update(examples=float("inf")),
                 "invalid JSON: non-finite number Infinity"),
    "wrong preset": (lambda d: d.update(preset="cpu"), "field preset: 'cpu' is not the leaderboard preset 'smoke'"),
    "missing seeds": (lambda d: d["tasks"][TASK]["runs"].pop(2), f"field tasks/{TASK}/runs: missing seed(s) [2]"),
    "seed picking": (lambda d: d["tasks"][TASK]["runs"].append(
        {**copy.deepcopy(d["tasks"][TASK]["runs"][0]), "seed": 4}) or _set_seed(d, 3, 4),
        f"field tasks/{TASK}/runs: seeds [0, 1, 2, 4] skip some"),
    "duplicate seed": (lambda d: _set_seed(d, 2, 1), "seed(s) [1] appear more than once"),
    "unknown task version": (lambda d: d["tasks"][TASK].update(version="0.9"),
                             f"field tasks/{TASK}/version: unknown task version '0.9'"),
    "unknown task": (lambda d: d["tasks"].update(no_such_task=d["tasks"].pop(TASK)),
                     "field tasks/no_such_task: unknown or unavailable task"),
    "changed config": (lambda d: d["tasks"][TASK]["config"].update(dim=3),
                       f"field tasks/{TASK}/config: differs from preset 'smoke' in ['dim']"),
    "too few generations": (lambda d: _records(d).pop(), f"field tasks/{TASK}/runs/0/records: 3 generation records, expected 4"),
    "unfinished run": (lambda d: d["tasks"][TASK]["runs"][1]["manifest"].update(status="running"),
                       f"field tasks/{TASK}/runs/1/manifest/status: 'running' does not match 'complete'"),
    "manifest of another strategy": (lambda d: d["tasks"][TASK]["runs"][0]["manifest"]["strategy"].update(name="mix"),
                                     f"field tasks/{TASK}/runs/0/manifest/strategy/name: 'mix' does not match 'replace'"),
    "undeclared fresh real data": (lambda d: _records(d)[2]["composition"].update(fresh_real=10),
                                   "composition/fresh_real: extra real data used"),
    "name escaping the output folder": (lambda d: d.update(name="../../index"),
                                        "field name: '../../index' is not a safe entry name"),
    "HTML in the name": (lambda d: d.update(name="<b>x</b>"), "field name: '<b>x</b>' is not a safe entry name"),
    "script url": (lambda d: d.update(url="javascript:alert(1)"), "field url: 'javascript:alert(1)' must be an http://"),
    "placeholder url": (lambda d: d.update(url="https://arxiv.org/abs/XXXX.XXXXX"),
                        "field url: 'https://arxiv.org/abs/XXXX.XXXXX' is a placeholder"),
    "arXiv url without an identifier": (lambda d: d.update(url="https://arxiv.org/abs/soon"),
                                        "names no arXiv identifier"),
    "url of an example host": (lambda d: d.update(url="https://example.com/paper"), "is a placeholder"),
    "unknown top-level field": (lambda d: d.update(extra=1), "Additional properties are not allowed ('extra'"),
    "schema version": (lambda d: d.update(schema_version=2), "field schema_version: 1 was expected"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_validation_rejects_bad_submissions_naming_file_and_field(case, committed, tmp_path):
    mutate, expected = BAD[case]
    data = committed()
    mutate(data)
    path = save(tmp_path, data, "replace.json")
    with pytest.raises(SubmissionError) as info:
        rules.read_entry(path, SMOKE)
    message = str(info.value)
    assert str(path) in message and expected in message, message


def test_oversized_and_malformed_files_are_refused_before_parsing(committed, tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(committed()) + " " * submission.MAX_BYTES)
    with pytest.raises(SubmissionError, match=r"big.json: file is [\d,]+ bytes; the limit is"):
        submission.read(big)
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    with pytest.raises(SubmissionError, match="broken.json: invalid JSON"):
        submission.read(broken)


def test_validate_command_reports_each_file(committed, tmp_path, capsys):
    (tmp_path / "good").mkdir()
    good = save(tmp_path / "good", committed("mix"), "mix.json")
    bad_data = committed("mix")
    bad_data["preset"] = "paper"
    bad = save(tmp_path, bad_data, "mix.json")
    renamed = save(tmp_path, committed("mix"), "renamed.json")
    assert main(["leaderboard", "validate", "--preset", "smoke", str(good), str(bad), str(renamed)]) == 1
    out = capsys.readouterr().out
    ok_line = next(line for line in out.splitlines() if line.startswith(f"ok      {good}: entry 'mix', preset smoke, "))
    assert f"{TASK} (seeds 3)" in ok_line
    assert f"INVALID {bad}" in out and "field preset: 'paper'" in out
    assert f"INVALID {renamed}" in out and "field name: the entry 'mix' must be stored as mix.json" in out


# ------------------------------------------------------------------ submit
@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for strategy in ("replace", "mix[real_fraction=0.25]", "mix[real_fraction=0.75]"):
        for seed in range(3):
            run_strategy(root, TASK, strategy, seed)
    return root


def test_submit_writes_an_entry_that_holds_every_seed_and_generation(smoke_runs, tmp_path, capsys):
    out = tmp_path / "replace.json"
    args = ["submit", str(smoke_runs / TASK / "replace"), "--name", "replace", "--description", "d", "--out", str(out),
            "--draft"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{TASK}: seeds [0, 1, 2], G=3" in printed
    assert f"collapselab leaderboard validate {out}" in printed
    entry = submission.read(out)
    runs = entry["tasks"][TASK]["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2] and all(len(r["records"]) == 4 for r in runs)
    on_disk = results.load_run(smoke_runs / TASK / "replace" / "smoke" / "seed-1")
    assert runs[1]["records"][3]["metrics"] == on_disk.records[3].metrics
    assert runs[1]["manifest"] == as_json(on_disk.manifest)
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first  # same runs, same bytes


def test_real_links_pass_the_url_rule():
    for url in ("https://arxiv.org/abs/2404.01413", "https://arxiv.org/abs/2404.01413v2", "https://arxiv.org/pdf/2404.01413.pdf",
                "https://arxiv.org/abs/cs/0112017", "https://github.com/someone/their-method", None):
        assert rules.url_problems(url, "url") == [], url


SUBMIT_REFUSALS = {
    "file named otherwise": ({"name": "recent-window", "file": "other.json"},
                             "the entry 'recent-window' must be written to a file named recent-window.json"),
    "placeholder url": ({"url": "https://arxiv.org/abs/XXXX.XXXXX"}, "is a placeholder"),
    "name of a published entry": ({"name": "mix", "file": "mix.json"}, "the name 'mix' is the published entry"),
    "not the leaderboard preset": ({}, "field preset: 'smoke' is not the leaderboard preset 'cpu'"),
    "too few seeds": ({"seeds": [0, 1]}, f"field tasks/{TASK}/runs: missing seed(s)"),
}


@pytest.mark.parametrize("case", sorted(SUBMIT_REFUSALS))
def test_submit_refuses_what_validate_would_refuse_and_writes_nothing(case, smoke_runs, tmp_path, capsys):
    change, expected = SUBMIT_REFUSALS[case]
    name = change.get("name", "recent-window")
    out = tmp_path / change.get("file", f"{name}.json")
    seeds = change.get("seeds", [0, 1, 2])
    dirs = [str(smoke_runs / TASK / "replace" / "smoke" / f"seed-{s}") for s in seeds]
    args = ["submit", *dirs, "--name", name, "--description", "d", "--out", str(out)]
    args += ["--url", change["url"]] if "url" in change else []
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "nothing written" in err and not out.exists() and not gallery.path_for(out).exists()
    assert main([*args, "--draft"]) == 0 and submission.read(out)["name"] == name


def test_submit_refuses_unfinished_runs(smoke_runs, tmp_path):
    run = tmp_path / "unfinished"
    run_strategy(run, TASK, "replace", 0)
    directory = run / TASK / "replace" / "smoke" / "seed-0"
    manifest = results.read_manifest(directory)
    results.write_manifest(directory, manifest.model_copy(update={"status": "running"}))
    with pytest.raises(SubmissionError, match="status 'running'"):
        submit.build(results.find_runs([run]), "x", "d", None)


def test_submit_refuses_mixed_parameters_and_presets(smoke_runs, tmp_path):
    with pytest.raises(SubmissionError, match="these runs mix strategies or strategy parameters"):
        submit.build(results.find_runs([smoke_runs / TASK]), "x", "d", None)
    other = tmp_path / "cpu"
    run_strategy(other, TASK, "replace", 3, preset="cpu", generations=1)
    with pytest.raises(SubmissionError, match="these runs mix presets"):
        submit.build(results.find_runs([smoke_runs / TASK / "replace", other]), "x", "d", None)


def test_submit_refuses_mixed_task_versions(tmp_path):
    for seed in (0, 1):
        run_strategy(tmp_path, TASK, "replace", seed)
    directory = tmp_path / TASK / "replace" / "smoke" / "seed-1"
    manifest = results.read_manifest(directory)
    results.write_manifest(directory, manifest.model_copy(update={"task": manifest.task.model_copy(update={"version": "0.9"})}))
    with pytest.raises(SubmissionError, match=f"these runs mix task version on task '{TASK}'"):
        submit.build(results.find_runs([tmp_path]), "x", "d", None)


def test_submit_merge_replaces_the_tasks_it_covers_and_keeps_the_rest(smoke_runs, tmp_path):
    out = tmp_path / "replace.json"
    replace_dir = smoke_runs / TASK / "replace"
    submit.write_entry([replace_dir / "smoke" / "seed-0", replace_dir / "smoke" / "seed-1"], out, "replace", "first", None)
    stale = json.loads(out.read_text())
    stale["tasks"][TASK]["config"]["trials"] += 1  # the task's preset changed since: this section is stale
    for run in stale["tasks"][TASK]["runs"]:
        run["manifest"]["task"]["config"] = stale["tasks"][TASK]["config"]
    out.write_text(json.dumps(stale))
    notes = submit.write_entry([replace_dir], out, None, None, None, merge_into=True)
    entry = json.loads(out.read_text())
    assert entry["description"] == "first"  # kept from the existing entry
    assert [r["seed"] for r in entry["tasks"][TASK]["runs"]] == [0, 1, 2]
    assert notes[0].startswith(f"wrote {out}: entry 'replace'")
    mix = [p.parent for p in (smoke_runs / TASK).glob("mix-*/smoke/seed-0/manifest.json")][0]
    with pytest.raises(SubmissionError, match="cannot merge: the existing entry has strategy"):
        submit.write_entry([mix], out, None, None, None, merge_into=True)


def test_regenerating_a_changed_baseline_restarts_its_entry(smoke_runs, tmp_path):
    """The baselines' regeneration replaces an entry whose strategy definition changed (its old
    sections were run by another strategy) instead of refusing, and says so."""
    out = tmp_path / "replace.json"
    replace_dir = smoke_runs / TASK / "replace"
    submit.write_entry([replace_dir / "smoke" / "seed-0"], out, "replace", "first", None)
    old = json.loads(out.read_text())
    old["strategy"]["params"] = {"retired": 1}  # as if the baseline had another parameter then
    for run in old["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"]["params"] = {"retired": 1}
    out.write_text(json.dumps(old))
    with pytest.raises(SubmissionError, match="cannot merge: the existing entry has strategy"):
        submit.write_entry([replace_dir], out, None, None, None, merge_into=True)
    notes = submit.write_entry([replace_dir], out, "replace", "second", None, merge_into=True,
                               restart_on_strategy_change=True)
    entry = json.loads(out.read_text())
    assert entry["strategy"]["params"] == {} and set(entry["tasks"]) == {TASK}
    assert [r["seed"] for r in entry["tasks"][TASK]["runs"]] == [0, 1, 2]
    assert any("starts afresh" in n for n in notes)


def test_drop_stale_removes_only_the_sections_the_installed_tasks_no_longer_accept(tmp_path):
    entries = make_entries(tmp_path, {"replace": "replace"}, tasks=(TASK, "mnist_vae"), seeds=(0,))
    entry = entries["replace"]
    section = entry["tasks"]["mnist_vae"]
    section["version"] = "0.9"  # an entry from before the task changed its numbers
    for run in section["runs"]:
        run["manifest"]["task"]["version"] = "0.9"
    path = tmp_path / "subs" / "replace.json"
    submission.write(path, entry)
    made = runs_root(tmp_path)  # the session's shared runs: only replace's are this entry's
    samples = artifacts.entry_gallery(results.find_runs([made / TASK / "replace", made / "mnist_vae" / "replace"]), "replace")
    assert set(samples["tasks"]) == {"mnist_vae"}  # the regression task writes no sample artifacts
    gallery.write(gallery.path_for(path), samples, entry)
    notes = baselines.drop_stale(["replace"], path.parent)
    kept = submission.read(path)
    assert set(kept["tasks"]) == {TASK} and kept["tasks"][TASK] == entry["tasks"][TASK]
    assert not gallery.path_for(path).exists()  # its only samples were of the dropped task
    assert len(notes) == 1 and "dropped the stale mnist_vae section" in notes[0] and "'0.9'" in notes[0]
    assert baselines.drop_stale(["replace"], path.parent) == []  # nothing left to drop


def test_rank_places_an_entry_against_the_published_board_as_the_site_would(committed, tmp_path, capsys):
    from collapselab.leaderboard import aggregate

    published = tmp_path / "published"
    published.mkdir()
    save(published, committed("replace"), "replace.json")
    mine = save(tmp_path, committed("mix"), "mix.json")
    assert main(["leaderboard", "rank", str(mine), "--preset", "smoke", "--submissions", str(published)]) == 0
    out = capsys.readouterr().out
    board = aggregate.aggregate({"replace": committed("replace"), "mix": committed("mix")})
    row = next(r for r in board["entries"] if r["name"] == "mix")
    table = next(t for t in board["tracks"] if "mix" in t["ranked"] + t["partial"])
    expected = (f"{table['name']}: rank {row['rank']} of {len(table['ranked'])}" if row["rank"] is not None
                else f"{table['name']}: not ranked")
    assert "mix against 1 published entries" in out and expected in out, out
    assert f"{TASK}: {row['tasks'][TASK]['score']['mean']:.3f}" in out

    broken = committed("mix")
    broken["preset"] = "cpu"
    bad = save(tmp_path / "published", broken, "mix.json")
    assert main(["leaderboard", "rank", str(bad), "--preset", "smoke", "--submissions", str(published)]) == 1
    assert f"INVALID {bad}" in capsys.readouterr().out
