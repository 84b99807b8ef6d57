"""The schema validator's fast path for leaf values gives jsonschema's own verdicts and messages."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collapselab.formats import submission
from collapselab.leaderboard import SUBMISSIONS
from collapselab.storage import schema

ENTRY = json.loads((SUBMISSIONS / "mix.json").read_text())
PLAIN = jsonschema.Draft202012Validator(submission.SUBMISSION_SCHEMA)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(["", "loss", "a\n", "x" * 70, "0" * 64, "NAME"]), st.just([]), st.just({}), st.just([1, "a"]))


def reported(errors) -> list[tuple[str, str]]:
    return [("/".join(map(str, e.absolute_path)), e.message) for e in errors]


def plain_errors(document) -> list[tuple[str, str]]:
    found = sorted(PLAIN.iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    return reported(found)


def leaves(node, path=()):
    """The path of every value that is not an object or a list (where the fast path checks)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    else:
        yield path


def _trimmed(entry):
    """``entry`` with two runs per task section: every kind of field, a fraction of the document (each
    fuzzed example validates the whole document twice)."""
    cut = copy.deepcopy(entry)
    for section in cut["tasks"].values():
        section["runs"] = section["runs"][:2]
    return cut


FUZZED = _trimmed(ENTRY)
LEAVES = list(leaves(FUZZED))


def change(document, path, value, rename: bool = False):
    """``document`` with the leaf at ``path`` set to ``value`` (``rename``: its key renamed to ``value`` instead)."""
    *parents, last = path
    holder = document
    for key in parents:
        holder = holder[key]
    if rename and isinstance(holder, dict):
        holder[value if isinstance(value, str) else str(value)] = holder.pop(last)
    else:
        holder[last] = value
    return document


def replaced(path, value, rename: bool = False):
    return change(copy.deepcopy(ENTRY), path, value, rename)


def test_targeted_bad_leaves_get_jsonschemas_errors():
    run = ("tasks", "linear_regression", "runs", 0)
    cases = [
        (replaced((*run, "records", 1, "metrics", "loss"), True), "True is not of type 'number'"),
        (replaced((*run, "records", 1, "metrics", "loss"), "0.5"), "'0.5' is not of type 'number'"),
        (replaced((*run, "records", 1, "compute", "steps"), -1), "-1 is less than the minimum of 0"),
        (replaced((*run, "records", 1, "compute", "steps"), 2.5), "2.5 is not of type 'integer'"),
        (replaced((*run, "records", 1, "composition", "real"), None), "None is not of type 'integer'"),
        (replaced((*run, "records", 1, "metrics", "loss"), "Bad-Name\n", rename=True), "does not match"),
        (replaced((*run, "records", 1, "generation"), False), "False is not of type 'integer'"),
        (replaced((*run, "manifest", "command", 0), 7), "7 is not of type 'string'"),
    ]
    assert plain_errors(ENTRY) == [] and schema.errors(ENTRY, submission.SUBMISSION_SCHEMA) == []
    for document, message in cases:
        fast = reported(schema.errors(document, submission.SUBMISSION_SCHEMA))
        assert fast == plain_errors(document) and any(message in text for _, text in fast), (message, fast)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LEAVES), VALUES, st.booleans()), min_size=1, max_size=3))
def test_any_changed_leaves_get_the_same_errors_as_jsonschema(changes):
    document = copy.deepcopy(FUZZED)
    for path, value, rename in changes:
        try:
            change(document, path, value, rename)
        except (KeyError, IndexError, TypeError):  # an earlier change moved this leaf
            continue
    assert reported(schema.errors(document, submission.SUBMISSION_SCHEMA)) == plain_errors(document)


def test_a_remembered_check_is_forgotten_outside_its_block():
    document = copy.deepcopy(ENTRY)
    with schema.remembering():
        assert schema.errors(document, submission.SUBMISSION_SCHEMA) == []
    document["tasks"]["linear_regression"]["runs"][0]["records"][1]["metrics"]["loss"] = "bad"
    assert reported(schema.errors(document, submission.SUBMISSION_SCHEMA)) == plain_errors(document) != []


def test_the_schemas_are_generated_from_the_models_and_agree_with_them():
    """The models are the one definition: every run of a committed entry is valid under the generated
    schema and under the models themselves, and a constraint of a model is one of its schema."""
    import pydantic

    from collapselab.formats import records

    submission.Entry.model_validate(ENTRY)
    with pytest.raises(pydantic.ValidationError):
        submission.Entry.model_validate({**ENTRY, "unknown": 1})  # a closed object, as in the schema
    for run in ENTRY["tasks"]["linear_regression"]["runs"][:2]:
        assert schema.errors(run["manifest"], records.MANIFEST_SCHEMA) == []
        records.Manifest.model_validate(run["manifest"])
        for record in run["records"]:
            assert schema.errors(record, records.RECORD_SCHEMA) == []
            records.Record.model_validate(record)
    record = copy.deepcopy(ENTRY["tasks"]["linear_regression"]["runs"][0]["records"][1])
    for bad, where in ((("metrics", "Loss"), "metrics"), (("composition", "real"), "composition/real"),
                       (("checksums", "x"), "checksums/x")):
        broken = copy.deepcopy(record)
        holder, key = broken.setdefault(bad[0], {}), bad[1]
        if bad[0] == "metrics":
            holder[key] = 1.0  # a metric name the pattern refuses
        else:
            holder[key] = -1 if bad[0] == "composition" else "not a sha256"
        assert [path for path, _ in reported(schema.errors(broken, records.RECORD_SCHEMA))] == [where], bad
        with pytest.raises(pydantic.ValidationError):
            records.Record.model_validate(broken)
    del record["metrics"]["loss"]
    assert reported(schema.errors(record, records.RECORD_SCHEMA)) == [("metrics", "'loss' is a required property")]
