"""Strict parsing of every file a stranger may hand CollapseLab: JSON numbers are finite and
integers round-trip, YAML launcher configs are bounded, submitted texts hold no control or
bidirectional characters, gallery images decode, and ``export`` never overwrites its input."""

from __future__ import annotations

import io
import json
import math
import shutil
import struct
import time
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collapselab.cli.main import main
from collapselab.errors import ConfigError, ParameterError, ResultFileError, SubmissionError
from collapselab.formats import gallery, safe_text, submission
from collapselab.leaderboard import SUBMISSIONS
from collapselab.operations.execution.launcher_config import LauncherConfig, load_config
from collapselab.operations.publishing import artifacts
from collapselab.operations.results import export
from collapselab.storage import strict_json
from tests.helpers import run_strategy

ENTRY = SUBMISSIONS / "self-correct.json"  # the smallest committed entry


# ------------------------------------------------------------------ strict JSON
@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400", "123456789e400"])
def test_numbers_beyond_the_float_range_are_refused_not_read_as_infinity(number):
    with pytest.raises(ResultFileError, match="beyond the range of a float"):
        strict_json.loads(f'{{"a": [1, {{"loss": {number}}}]}}', "x.json")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_round_trips(value):
    assert strict_json.loads(strict_json.dumps({"v": value})) == {"v": value}


@given(st.integers())
def test_integers_are_written_only_if_they_read_back(value):
    try:
        text = strict_json.dumps([value])
    except ValueError as exc:
        assert abs(value) >= 10**strict_json.MAX_INT_DIGITS and "could not be read back" in str(exc)
        return
    assert strict_json.loads(text) == [value]


def test_a_submission_with_1e999_is_one_line_for_export(tmp_path, capsys):
    text = ENTRY.read_text()
    hostile = tmp_path / "self-correct.json"
    hostile.write_text(text.replace('"loss": ', '"loss": 1e999, "x": ', 1))
    assert main(["export", str(hostile), "--out", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "1e999 is beyond the range of a float" in err and err.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()


def test_a_submission_with_a_seed_of_20_digits_is_not_written(tmp_path):
    data = json.loads(ENTRY.read_text())
    section = next(iter(data["tasks"].values()))
    for run in section["runs"]:
        run["seed"] = run["manifest"]["seed"] = 12345678901234567890 + run["seed"]
    with pytest.raises(SubmissionError, match="could not be read back"):
        submission.write(tmp_path / "self-correct.json", data)
    assert not (tmp_path / "self-correct.json").exists()


# ------------------------------------------------------------------ YAML launcher configs
def alias_bomb() -> str:
    """Nine references per level, eight levels: 481 bytes that expand to 9^9 strings."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, message", [
    ("[" * 50_000 + "]" * 50_000, "the limit is"),
    ("[" * 30_000 + "]" * 30_000, "nested more than"),
    ("".join("  " * i + f"k{i}:\n" for i in range(20)) + "  " * 20 + "x\n", "nested more than"),
    (alias_bomb(), "aliases (*name) are not allowed"),
    ("base: &b {time: 5}\nslurm_parameters:\n  <<: *b\n", "aliases (*name) are not allowed"),
])
def test_hostile_yaml_is_refused_quickly_with_one_line(tmp_path, text, message):
    path = tmp_path / "launcher.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.perf_counter() - start < 5.0
    assert message in str(info.value) and "\n" not in str(info.value)


def test_ordinary_yaml_configs_still_load(tmp_path):
    example = load_config(SUBMISSIONS.parent / "launchers" / "slurm.example.yaml")
    assert example.time is not None
    path = tmp_path / "anchored.yaml"
    path.write_text("partition: &p gpu\ntime: 30\nsetup:\n  - module load cuda\n")
    assert load_config(path) == LauncherConfig(partition="gpu", time=30, setup=("module load cuda",))


# ------------------------------------------------------------------ submitted texts
UNSAFE = ["\x00", "\x1b[31m", "\u202e", "\u2066", "\u200f", "\u061c", "\x85", "\r", "\x7f"]
FIELDS = {
    "description": lambda d, t: d.update(description=f"ok {t} text"),
    "strategy/citation": lambda d, t: d["strategy"].update(citation=f"Paper {t} 2024"),
    "strategy/params/note": lambda d, t: d["strategy"]["params"].update(note=f"a{t}"),
    "url": lambda d, t: d.update(url=f"https://github.com/someone/{t}x"),
    "tasks/linear_regression/runs/0/manifest/command/0": lambda d, t: d["tasks"]["linear_regression"]["runs"][0][
        "manifest"]["command"].__setitem__(0, f"collapselab{t}"),
}


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("char", UNSAFE, ids=[f"U+{ord(c[0]):04X}" for c in UNSAFE])
def test_control_and_bidirectional_characters_are_refused_in_every_text_field(field, char):
    data = json.loads(ENTRY.read_text())
    FIELDS[field](data, char)
    found = submission.structure_problems(data, "e.json")
    assert found, (field, char)
    if field != "url":  # the url's own pattern may speak first
        assert any(p.startswith(f"e.json: field {field}: contains U+{ord(char[0]):04X}") for p in found), found


def test_a_bidirectional_character_in_a_parameter_name_is_named_escaped():
    data = json.loads(ENTRY.read_text())
    data["strategy"]["params"]["a\u202eb"] = 1
    (problem,) = submission.structure_problems(data, "e.json")
    assert "strategy/params/a\\u202eb" in problem and "\u202e" not in problem


def test_multi_line_descriptions_and_ordinary_unicode_are_accepted():
    data = json.loads(ENTRY.read_text())
    data["description"] = "Line one,\n\tline two: Gerstgrasser et al., naïve, 日本語, émigré, ∑ x²."
    assert submission.structure_problems(data, "e.json") == []


@given(st.text(max_size=40))
def test_the_text_rule_refuses_exactly_the_unsafe_characters(text):
    problem = safe_text.unsafe_character(text)
    unsafe = [c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F
              or c in "\u061c\u200e\u200f" or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]
    assert (problem is None) == (not unsafe)
    assert safe_text.unsafe_character(safe_text.replace_unsafe(text)) is None


def test_the_leaderboards_csv_and_html_get_no_submitted_control_character(tmp_path, capsys):
    hostile = tmp_path / "subs" / "self-correct.json"
    hostile.parent.mkdir()
    hostile.write_text(ENTRY.read_text().replace('"description": "', '"description": "\\u202e\\u001b[2J', 1))
    assert main(["leaderboard", "validate", str(hostile)]) == 1
    assert "field description: contains U+202E (RIGHT-TO-LEFT OVERRIDE)" in capsys.readouterr().out


def test_gallery_texts_refuse_and_sample_excerpts_replace_bidirectional_characters():
    assert safe_text.unsafe_character("abc\u202edef") is not None
    assert "\u202e" not in artifacts.clean_text("evil\u202etxt", 100)
    assert json.dumps(gallery.GALLERY_SCHEMA).count(safe_text.UNSAFE_CHARACTERS.replace("\\", "\\\\")) == 2


# ------------------------------------------------------------------ gallery images
def png(width: int = 32, height: int = 24) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def rewrite_chunks(data: bytes, kind: bytes, change) -> bytes:
    """``data`` with every chunk of ``kind`` rewritten by ``change`` (payload -> payload), checksums recomputed."""
    out, at = [data[:8]], 8
    while at < len(data):
        (length,), name = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        payload = data[at + 8:at + 8 + length]
        if name == kind:
            payload = change(payload)
        out.append(struct.pack(">I", len(payload)) + name + payload + struct.pack(">I", zlib.crc32(name + payload)))
        at += 12 + length
    return b"".join(out)


UNDECODABLE = {
    "scrambled pixel stream": lambda: rewrite_chunks(png(), b"IDAT", lambda p: bytes(b ^ 0x55 for b in p)),
    "truncated pixel stream": lambda: rewrite_chunks(png(), b"IDAT", lambda p: p[: len(p) // 2]),
    "header larger than the pixels": lambda: rewrite_chunks(png(), b"IHDR", lambda p: struct.pack(">II", 900, 900) + p[8:]),
    "decompression bomb": lambda: rewrite_chunks(png(), b"IHDR", lambda p: struct.pack(">II", 1500, 1500) + p[8:]),
}


@pytest.mark.parametrize("case", sorted(UNDECODABLE))
def test_pngs_that_pass_the_checksums_but_do_not_decode_are_refused(case):
    data = UNDECODABLE[case]()
    assert data.startswith(gallery.PNG_SIGNATURE)
    problem = gallery.png_problem(data)
    assert problem is not None and ("not a readable PNG" in problem or "in all" in problem), problem


def test_a_gallery_with_an_undecodable_png_is_not_published():
    entry = json.loads((SUBMISSIONS / "replace.json").read_text())
    task = next(iter(entry["tasks"]))
    data = {"schema_version": 1, "entry": "replace", "tasks": {task: {"seed": 0, "generations": [
        {"generation": 0, "images": [{"png": gallery.encode_png(UNDECODABLE["scrambled pixel stream"]()), "caption": "x"}]}]}}}
    found = gallery.problems(data, "g.json", entry)
    assert any("images/0/png: not a readable PNG" in p for p in found), found
    assert gallery.png_problem(png()) is None


# ------------------------------------------------------------------ export
def test_export_refuses_to_overwrite_its_input(tmp_path, capsys):
    given = tmp_path / "self-correct.json"
    shutil.copy(ENTRY, given)
    before = given.read_bytes()
    (tmp_path / "link.json").symlink_to(given)
    for out in (given, tmp_path / "." / "self-correct.json", tmp_path / "link.json"):
        assert main(["export", str(given), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "is one of the files being exported" in err and err.count("\n") == 1
    assert main(["export", str(tmp_path), "--out", str(given), "--format", "csv"]) == 2
    assert given.read_bytes() == before
    assert main(["export", str(given), "--out", str(tmp_path / "table.csv")]) == 0


def test_export_refuses_to_overwrite_a_file_of_an_exported_run(tmp_path):
    run = run_strategy(tmp_path / "runs", "linear_regression", "replace", generations=1)
    records = (run.path / "generations.jsonl").read_bytes()
    for name in ("generations.jsonl", "manifest.json"):
        with pytest.raises(ParameterError, match="is one of the files being exported"):
            export.export([tmp_path / "runs"], run.path / name, "csv")
    assert (run.path / "generations.jsonl").read_bytes() == records
    assert math.isfinite(export.export([run.path], tmp_path / "runs.csv", "csv")["metrics.loss"].sum())
