"""One reference, one name, one seed per run: an entry that re-runs the reference or another
entry under a new name is refused, naming that file whatever the order of the files; seeds
that are one run with touched last bits are refused."""

from __future__ import annotations

import copy

import pytest

from collapselab.errors import SubmissionError
from collapselab.leaderboard import aggregate, rules, site, validate
from tests.entries import SMOKE, TASK, make_entries, write_all


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_entries(tmp_path_factory.mktemp("entries"), {"replace": "replace", "mix": "mix", "accumulate": "accumulate"})


def renamed(entry: dict, name: str, strategy: str | None = None, spec: str | None = None) -> dict:
    entry = copy.deepcopy(entry)
    entry["name"] = name
    if strategy is not None:
        entry["strategy"]["name"] = strategy
    for run in entry["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"].update(name=entry["strategy"]["name"], spec=spec or run["manifest"]["strategy"]["spec"])
    return entry


def nudged(entry: dict, factor: float = 1.001) -> dict:
    """The entry with every loss after generation 0 scaled: other curves, the same strategy."""
    entry = copy.deepcopy(entry)
    for run in entry["tasks"][TASK]["runs"]:
        for record in run["records"][1:]:
            record["metrics"]["loss"] *= factor
    return entry


def folder(made, tmp_path, extra: list[dict]):
    return write_all(tmp_path / "subs", [made["replace"], made["mix"], made["accumulate"], *extra])


def board_of(made, tmp_path, extra: list[dict]):
    """What ``build`` checks before it writes anything: the valid entries' board, or the refusal."""
    entries, problems = validate.load_entries(folder(made, tmp_path, extra), SMOKE)
    if problems:
        raise SubmissionError(validate.flat(problems))
    return aggregate.aggregate(entries)


@pytest.mark.parametrize("name", ["aaa-replace", "replace-again", "zzz"])
def test_replace_under_another_name_is_refused_naming_the_new_file(made, tmp_path, name):
    honest = board_of(made, tmp_path / "honest", [])
    with pytest.raises(SubmissionError) as info:
        board_of(made, tmp_path / "forged", [renamed(made["replace"], name)])
    assert [p.split(": ")[0].rsplit("/", 1)[1] for p in info.value.problems] == [f"{name}.json"]
    assert "runs 'replace', the leaderboard's reference; only the entry named 'replace'" in str(info.value)
    subs = folder(made, tmp_path / "skipped", [renamed(made["replace"], name)])
    board = site.build(tmp_path / "site", subs, SMOKE, skip_invalid=True)
    assert board["tasks"][0]["reference"] == "replace" and [e["file"] for e in board["excluded"]] == [f"{name}.json"]
    assert [(r["name"], r["overall"]) for r in board["entries"]] == [(r["name"], r["overall"]) for r in honest["entries"]]


def test_replace_relabelled_as_another_strategy_is_refused_by_its_runs(made, tmp_path):
    forged = renamed(made["replace"], "my-method", strategy="my-method", spec="my-method")
    with pytest.raises(SubmissionError, match=r"my-method.json: entry 'my-method' is entry 'replace' run again \(the same "
                                              r"runs: linear_regression seeds \[0, 1, 2\] have the same loss curves"):
        board_of(made, tmp_path, [forged])


def test_a_second_entry_of_a_strategy_and_parameters_is_refused(made, tmp_path):
    for name in ("a-mix", "mix-again"):  # before and after mix.json by name: the copy is refused either way
        with pytest.raises(SubmissionError) as info:
            board_of(made, tmp_path / name, [renamed(nudged(made["mix"]), name)])
        assert len(info.value.problems) == 1
        assert f"{name}.json: entry {name!r} is entry 'mix' run again (it runs the same strategy and parameters)" in (
            info.value.problems[0])


def test_replace_json_must_run_replace(made, tmp_path):
    squatter = renamed(made["mix"], "replace")
    subs = write_all(tmp_path / "subs", [squatter, made["accumulate"]])
    entries, problems = validate.load_entries(subs, SMOKE)
    assert sorted(entries) == ["accumulate"]
    assert problems == {str(subs / "replace.json"): [f"{subs / 'replace.json'}: entry 'replace' is the leaderboard's "
                                                     "reference and must run the strategy 'replace' without parameters"]}
    assert not aggregate._is_reference(renamed(made["replace"], "other"))


def test_validate_gives_the_same_answer_in_any_file_order(made, tmp_path):
    subs = write_all(tmp_path / "subs", [made["replace"], made["mix"], made["accumulate"], renamed(made["replace"], "aaa"),
                                         renamed(nudged(made["mix"]), "zzz-mix")])
    published, problems = validate.load_entries(subs, SMOKE)
    assert sorted(published) == ["accumulate", "mix", "replace"] and len(problems) == 2
    paths = sorted(subs.glob("*.json"))
    answers = set()
    for order in (paths, paths[::-1], paths[2:] + paths[:2], [paths[i] for i in (3, 0, 4, 1, 2)]):
        lines, ok = validate.check_files(list(order), SMOKE, published)
        answers.add((frozenset(line for line in lines if not line.startswith("  ")), ok))
    assert len(answers) == 1
    (verdicts, ok), = answers
    assert not ok and {line.split()[0] + " " + line.split()[1].rsplit("/", 1)[1].rstrip(":") for line in verdicts} == {
        "ok accumulate.json", "ok mix.json", "ok replace.json", "INVALID aaa.json", "INVALID zzz-mix.json"}


def test_seeds_that_are_one_run_with_touched_last_bits_are_refused(made, tmp_path):
    entry = copy.deepcopy(made["mix"])
    runs = entry["tasks"][TASK]["runs"]
    for index in (1, 2):
        twin = copy.deepcopy(runs[0])
        twin["seed"] = twin["manifest"]["seed"] = index
        for record in twin["records"]:
            record["metrics"]["loss"] *= 1 + 1e-15
        runs[index] = twin
    path = write_all(tmp_path, [entry]) / "mix.json"
    with pytest.raises(SubmissionError) as info:
        rules.read_entry(path, SMOKE)
    assert [p.split("runs: ", 1)[1] for p in info.value.problems] == [
        f"seeds {a} and {b} have the same loss curve (within a relative 1e-09); every seed must be its own run"
        for a, b in ((0, 1), (0, 2))]
    runs[2] = nudged({"tasks": {TASK: {"runs": [runs[2]]}}}, 1.0 + 1e-6)["tasks"][TASK]["runs"][0]
    write_all(tmp_path, [entry])
    with pytest.raises(SubmissionError) as info:
        rules.read_entry(path, SMOKE)
    assert len(info.value.problems) == 1 and "seeds 0 and 1" in info.value.problems[0]
