"""Result files: strict JSON, validation naming file and field, atomic writes on a full disk."""

from __future__ import annotations

import errno
import json
import os

import pytest

from collapselab.engine import rundir as results
from collapselab.errors import ResultFileError, WriteError
from collapselab.storage import strict_json
from collapselab.storage.atomic import atomic_write_text
from tests.helpers import run_strategy


@pytest.fixture()
def run(tmp_path):
    return run_strategy(tmp_path, "linear_regression", "replace", generations=2)


def test_written_files_are_strict_json_and_validate(run):
    for line in (run.path / results.GENERATIONS).read_text().splitlines():
        record = json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))
        assert record["metrics"]["loss"] > 0
    assert results.load_run(run.path).records == run.records


def test_nan_is_never_written():
    with pytest.raises(ValueError):
        strict_json.dumps({"loss": float("nan")})


def test_nan_in_a_file_is_rejected_with_file_and_line(run):
    path = run.path / results.GENERATIONS
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"loss": ', '"loss": NaN, "was": ', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultFileError, match=r"generations.jsonl:2: invalid JSON: non-finite number NaN"):
        results.load_run(run.path)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: m.pop("seed"), "field \\(top level\\): 'seed' is a required property"),
        (lambda m: m["task"].update(version=3), "field task/version: 3 is not of type 'string'"),
        (lambda m: m.update(status="paused"), "field status: 'paused' is not one of"),
        (lambda m: m.update(schema_version=99), "field schema_version: 2 was expected"),
    ],
)
def test_malformed_manifest_names_the_field(run, edit, message):
    path = run.path / results.MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ResultFileError, match=message):
        results.load_run(run.path)


def test_record_missing_loss_names_the_field(run):
    path = run.path / results.GENERATIONS
    records = [json.loads(line) for line in path.read_text().splitlines()]
    del records[2]["metrics"]["loss"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ResultFileError, match=r"generations.jsonl:3: field metrics: 'loss' is a required property"):
        results.load_run(run.path)


def test_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    atomic_write_text(target, "old\n")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(WriteError, match="No space left on device.*previous file is unchanged"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_find_runs_rejects_a_path_that_is_not_a_run(tmp_path):
    with pytest.raises(ResultFileError, match="not a run directory"):
        results.find_runs([tmp_path / "missing"])
