"""Hostile and careless submissions: every file ``validate`` accepts, ``build`` builds; everything
else is refused with problems that name the file and the field, never a crash or a hang.

One test per way a submission broke the leaderboard before, then property-based fuzzing
(hypothesis) of the validator and the builder: a bounded run in the default suite, a long one
marked ``slow``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.leaderboard import aggregate, rules, site, validate
from tests.entries import SMOKE, TASK, make_entries, write_all


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_entries(tmp_path_factory.mktemp("entries"), {"replace": "replace", "mix": "mix"})


def _records(entry, run=0):
    return entry["tasks"][TASK]["runs"][run]["records"]


def _refused(directory: Path, text: str, name: str = "mix") -> str:
    path = directory / f"{name}.json"
    path.write_text(text)
    with pytest.raises(SubmissionError) as info:
        rules.read_entry(path, SMOKE)
    assert str(path) in str(info.value)
    return str(info.value)


def _json(entry) -> str:
    return json.dumps(entry)


def test_numbers_that_overflow_summaries_are_refused(made, tmp_path):
    entry = copy.deepcopy(made["mix"])
    text = _json(entry).replace(f'"loss": {_records(entry)[1]["metrics"]["loss"]!r}', '"loss": ' + "9" * 320, 1)
    assert "integer with 320 digits" in _refused(tmp_path, text)
    for value, message in ((1.7e308, "out of range"), (5e-324, "generation 0's loss must be above"),
                           (0.0, "generation 0's loss must be above"), (-0.5, "outside the task's range")):
        entry = copy.deepcopy(made["mix"])
        _records(entry)[0]["metrics"]["loss"] = value
        assert message in _refused(tmp_path, _json(entry))


def test_negative_losses_are_refused_instead_of_ranking_first(made, tmp_path):
    entry = copy.deepcopy(made["mix"])
    for record in _records(entry)[1:]:
        record["metrics"]["loss"] = -1.0
    assert "metrics/loss: -1.0 is outside the task's range [0.0, None]" in _refused(tmp_path, _json(entry))


def test_metric_names_and_counts_are_bounded(made, tmp_path):
    entry = copy.deepcopy(made["mix"])
    _records(entry)[1]["metrics"]["$\\frac$"] = 1.0
    assert "does not match" in _refused(tmp_path, _json(entry))
    entry = copy.deepcopy(made["mix"])
    _records(entry)[1]["metrics"].update({f"m{i}": 1.0 for i in range(3000)})
    assert "has too many properties" in _refused(tmp_path, _json(entry))


def test_deep_nesting_and_names_ending_in_a_newline_are_refused(made, tmp_path):
    assert "nested 600 levels deep" in _refused(tmp_path, "[" * 600 + "]" * 600)
    for field, value in (("name", "mix\n"), ("url", "https://github.com/someone/method\n")):
        entry = copy.deepcopy(made["mix"])
        entry[field] = value
        assert f"field {field}" in _refused(tmp_path, _json(entry))


def test_links_fifos_and_devices_are_never_read(made, tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    assert "symbolic link" in _refused_path(tmp_path / "zero.json")
    os.mkfifo(tmp_path / "fifo.json")
    assert "not a regular file" in _refused_path(tmp_path / "fifo.json")  # and does not hang
    entries, problems = validate.load_entries(tmp_path, SMOKE)
    assert not entries and len(problems) == 2


def _refused_path(path: Path) -> str:
    with pytest.raises(SubmissionError) as info:
        rules.read_entry(path, SMOKE)
    return str(info.value)


def test_a_seed_submitted_twice_is_refused(made, tmp_path):
    entry = copy.deepcopy(made["mix"])
    copied = copy.deepcopy(entry["tasks"][TASK]["runs"][0])
    copied["seed"] = copied["manifest"]["seed"] = 3
    entry["tasks"][TASK]["runs"].append(copied)
    assert "seeds 0 and 3 have the same loss curve" in _refused(tmp_path, _json(entry))


def test_build_reports_every_bad_file_at_once_or_builds_without_them(made, tmp_path):
    subs = write_all(tmp_path / "subs", [made["replace"], made["mix"]])
    (subs / "broken.json").write_text('{"name": ')
    negative = copy.deepcopy(made["mix"])
    negative["name"] = "negative"
    _records(negative)[2]["metrics"]["loss"] = -3.0
    write_all(subs, [negative])
    with pytest.raises(SubmissionError) as info:
        site.build(tmp_path / "site", subs, SMOKE)
    assert "broken.json" in str(info.value) and "negative.json" in str(info.value)
    assert not (tmp_path / "site").exists()
    board = site.build(tmp_path / "site", subs, SMOKE, skip_invalid=True)
    assert sorted(e["name"] for e in board["entries"]) == ["mix", "replace"]
    assert [item["file"] for item in board["excluded"]] == ["broken.json", "negative.json"]
    page = (tmp_path / "site" / "index.html").read_text()
    assert "Files left out of this build" in page and "negative.json" in page


def test_recorded_machine_names_reach_the_page_as_text(made, tmp_path):
    """The board names the machines its runs were recorded on, from the manifests: submitted text."""
    hostile = copy.deepcopy(made["mix"])
    for run in hostile["tasks"][TASK]["runs"]:
        run["manifest"]["environment"].update(cpu="<script>alert(1)</script> | x", blas_kernel="   ")
    subs = write_all(tmp_path / "subs", [made["replace"], hostile])
    board = site.build(tmp_path / "site", subs, SMOKE)
    kinds = board["tasks"][0]["machines"]
    assert "<script>alert(1)</script> | x, ?" in kinds and len(kinds) == 2  # the replace entry's machine too
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; | x, ?" in page


# ------------------------------------------------------------------ fuzzing
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, width=64)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


def _mutate(entry: dict, data: st.DataObject) -> dict:
    entry = copy.deepcopy(entry)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(entry) if p]
        path = data.draw(st.sampled_from(paths))
        parent = entry
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_JSON)
    return entry


def _check(made: dict, tmp: Path, data: st.DataObject, build: bool) -> str:
    mutated = _mutate(made["mix"], data)
    subs = tmp / "subs"
    subs.mkdir(parents=True, exist_ok=True)
    for old in subs.glob("*.json"):
        old.unlink()
    write_all(subs, [made["replace"]])
    name = mutated.get("name") if isinstance(mutated.get("name"), str) and rules.submission.safe_name(mutated["name"]) else "mix"
    path = subs / f"{name}.json"
    path.write_text(json.dumps(mutated, allow_nan=True) if data.draw(st.booleans()) else
                    json.dumps(mutated, allow_nan=True)[: data.draw(st.integers(0, 5000))])
    lines, ok = validate.check_files([path], SMOKE, {"replace": made["replace"]})
    entries, problems = validate.load_entries(subs, SMOKE)
    assert ok == (str(path) not in problems), "validate and build disagree"
    if ok:
        aggregate.aggregate(entries)
        if build:
            site.build(tmp / "site", subs, SMOKE)
        return "accepted"
    return "refused"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_submissions_are_refused_cleanly_or_built(made, tmp_path_factory, data):
    try:
        event(_check(made, tmp_path_factory.mktemp("fuzz"), data, build=data.draw(st.integers(0, 9)) == 0))
    except CollapseLabError as exc:  # refusals are CollapseLabErrors; nothing else may escape
        assert isinstance(exc, SubmissionError | CollapseLabError)
        event("refused by an error")


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_submissions_many_cases(made, tmp_path_factory, data):
    event(_check(made, tmp_path_factory.mktemp("fuzz"), data, build=data.draw(st.integers(0, 19)) == 0))
