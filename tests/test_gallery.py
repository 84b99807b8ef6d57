"""Galleries: samples per generation written by ``submit`` from the runs' artifacts, validated
like submissions (bounded, PNGs checked, texts without control characters), shown on the site
escaped and as the site's own image files."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from collapselab.cli.main import main
from collapselab.errors import SubmissionError
from collapselab.formats import gallery
from collapselab.leaderboard import SUBMISSIONS, rules, site
from collapselab.operations.publishing import artifacts
from tests.helpers import run_strategy

TASK = "linear_regression"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def png(width: int = 60, height: int = 40, noise: bool = False) -> bytes:
    from PIL import Image

    image = Image.frombytes("L", (width, height), os.urandom(width * height)) if noise else Image.new("RGB", (width, height), "teal")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def entry(name: str = "replace") -> dict[str, Any]:
    data = json.loads((SUBMISSIONS / f"{name}.json").read_text())
    data["tasks"] = {TASK: data["tasks"][TASK]}
    return data


def sample_gallery(name: str = "replace") -> dict[str, Any]:
    return {"schema_version": 1, "entry": name, "tasks": {TASK: {"seed": 0, "generations": [
        {"generation": 0, "images": [{"png": gallery.encode_png(png()), "caption": f"grid {HOSTILE}"}], "texts": [HOSTILE]},
        {"generation": 10, "texts": ["line one\nline two"]},
    ]}}}


# ------------------------------------------------------------------ from runs
def test_submit_writes_a_gallery_of_every_tasks_samples(sample_runs, tmp_path, capsys):
    out = tmp_path / "subs" / "demo.json"
    assert main(["submit", str(sample_runs), "--name", "demo", "--description", "d", "--out", str(out), "--draft"]) == 0
    assert "wrote " + str(out.parent / "galleries" / "demo.json") in capsys.readouterr().out
    path = gallery.path_for(out)
    data = gallery.read(path, json.loads(out.read_text()))
    assert sorted(data["tasks"]) == ["conformer_diffusion", "mnist_vae", "text_lm"]
    for section in data["tasks"].values():
        assert section["seed"] == 0 and [item["generation"] for item in section["generations"]] == [0, 1]
    for task in ("mnist_vae", "conformer_diffusion"):
        for item in data["tasks"][task]["generations"]:
            image = base64.b64decode(item["images"][0]["png"])
            assert image.startswith(gallery.PNG_SIGNATURE) and gallery.png_problem(image) is None
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(data["tasks"]["mnist_vae"]["generations"][0]["images"][0]["png"]))) as grid:
        assert grid.width == artifacts.IMAGE_WIDTH
    text_run = next(sample_runs.glob("text_lm/*/*/seed-0"))
    raw = (text_run / "artifacts" / "samples-gen-0001.txt").read_text()
    first = raw.split("--- sample 0 ---\n", 1)[1].split("\n\n--- sample 1", 1)[0]
    assert data["tasks"]["text_lm"]["generations"][1]["texts"][0] == artifacts.clean_text(first, gallery.MAX_TEXT_CHARS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_merge_keeps_the_gallery_of_the_other_tasks(sample_runs, tmp_path, capsys):
    out = tmp_path / "subs" / "demo.json"
    assert main(["submit", str(sample_runs / "mnist_vae"), "--name", "demo", "--description", "d", "--out", str(out), "--draft"]) == 0
    assert main(["submit", str(sample_runs / "text_lm"), "--merge", "--out", str(out), "--draft"]) == 0
    data = gallery.read(gallery.path_for(out), json.loads(out.read_text()))
    assert sorted(data["tasks"]) == ["mnist_vae", "text_lm"]
    assert main(["submit", str(sample_runs / "text_lm"), "--name", "demo", "--description", "d", "--out", str(out), "--draft"]) == 0
    assert sorted(gallery.read(gallery.path_for(out), json.loads(out.read_text()))["tasks"]) == ["text_lm"]
    capsys.readouterr()


def test_runs_without_sample_artifacts_write_no_gallery(tmp_path, capsys):
    run_strategy(tmp_path / "runs", TASK, "replace", overrides={"generations": 1})
    out = tmp_path / "subs" / "r.json"
    assert main(["submit", str(tmp_path / "runs"), "--name", "r", "--description", "d", "--out", str(out), "--draft"]) == 0
    assert "no sample artifacts in these runs" in capsys.readouterr().out
    assert out.exists() and not gallery.path_for(out).exists()


def test_the_generations_shown_are_evenly_spaced_from_0_to_g():
    assert artifacts.pick_generations(3) == [0, 1, 2, 3]
    picked = artifacts.pick_generations(100)
    assert len(picked) == gallery.MAX_GENERATIONS and picked[0] == 0 and picked[-1] == 100


def test_text_excerpts_drop_headers_split_samples_and_remove_control_characters():
    text = "# header\n\n--- sample 0 ---\nhello\x1b[31m world\n\n--- sample 1 ---\n" + "x" * 2000 + "\n"
    first, second = artifacts.text_excerpts(text)
    assert first == "hello\ufffd[31m world" and len(second) == gallery.MAX_TEXT_CHARS and second.endswith("…")


def test_text_samples_are_the_blocks_between_separators_without_the_header():
    from collapselab.formats.samples import text_samples

    text = ("# model: generation 3\n# temperature 1.0\nstray line before any separator\n"
            "--- sample 0 ---\n# a hash inside a sample stays\nline two\n\n"
            "--- sample 1 (empty) ---\n   \n"
            "---sample 2---  \nlast\n- -- not a separator --\n")
    assert text_samples(text) == ["stray line before any separator",
                                  "# a hash inside a sample stays\nline two",
                                  "last\n- -- not a separator --"]
    assert text_samples("") == [] and text_samples("# only a header\n") == []


# ------------------------------------------------------------------ validation
def mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(sample_gallery())
    change(data)
    return data


def first_image(data: dict[str, Any]) -> dict[str, Any]:
    return data["tasks"][TASK]["generations"][0]["images"][0]


CASES = {
    "another entry": (lambda d: d.update(entry="mix"), "field entry"),
    "unknown task": (lambda d: d["tasks"].update(text_lm=d["tasks"][TASK]), "the entry has no task 'text_lm'"),
    "unknown seed": (lambda d: d["tasks"][TASK].update(seed=97), "has no seed 97"),
    "generation past G": (lambda d: d["tasks"][TASK]["generations"][1].update(generation=11), "must increase"),
    "not a PNG": (lambda d: first_image(d).update(png=gallery.encode_png(b"GIF89a" + bytes(100))), "wrong signature"),
    "not base64": (lambda d: first_image(d).update(png="@@@@"), "not base64"),
    "too many bytes": (lambda d: first_image(d).update(png=gallery.encode_png(png(700, 700, noise=True))), "is longer than"),
    "too many pixels": (lambda d: first_image(d).update(png=gallery.encode_png(png(2000, 10))), "at most 1600 a side"),
    "truncated PNG": (lambda d: first_image(d).update(png=gallery.encode_png(png()[:60])), "not a readable PNG"),
    "control character": (lambda d: d["tasks"][TASK]["generations"][1].update(texts=["a\x1b[2Jb"]), "does not match"),
    "too many generations": (lambda d: d["tasks"][TASK].update(generations=[{"generation": g} for g in range(13)]),
                             "has more than 12 items"),
    "an extra field": (lambda d: d.update(html="<b>"), "Additional properties"),
}


def test_a_well_formed_gallery_has_no_problems():
    assert gallery.problems(sample_gallery(), "g.json", entry()) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_bad_gallery_is_refused_with_the_field_named(case):
    change, message = CASES[case]
    found = gallery.problems(mutated(change), "g.json", entry())
    assert found and any(message in problem for problem in found), found
    assert all(problem.startswith("g.json: field ") for problem in found)


def test_gallery_files_are_read_bounded_and_never_through_links(tmp_path):
    target = tmp_path / "real.json"
    target.write_text(json.dumps(sample_gallery()))
    link = tmp_path / "galleries" / "replace.json"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(SubmissionError, match="symbolic link"):
        gallery.read_for(tmp_path / "replace.json", entry())
    link.unlink()
    link.write_text("[" * 200 + "]" * 200)
    with pytest.raises(SubmissionError, match="nested 200 levels"):
        gallery.read_for(tmp_path / "replace.json", entry())


# ------------------------------------------------------------------ the site
def write_board(directory: Path, galleries: dict[str, Any]) -> Path:
    (directory / "galleries").mkdir(parents=True)
    for name in ("replace", "mix"):
        (directory / f"{name}.json").write_text(json.dumps(entry(name)))
    for name, data in galleries.items():
        (directory / "galleries" / f"{name}.json").write_text(json.dumps(data))
    return directory


def test_the_site_shows_galleries_escaped_as_its_own_image_files(tmp_path, capsys):
    subs = write_board(tmp_path / "subs", {"replace": sample_gallery()})
    site.build(tmp_path / "site", subs)
    page = (tmp_path / "site" / f"task-{TASK}.html").read_text()
    assert HOSTILE not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert 'id="samples-replace"' in page and "No samples in the submissions of: mix" in page
    image = tmp_path / "site" / "img" / "gallery" / "replace" / f"{TASK}-0000-0.png"
    assert image.read_bytes() == png() and f'src="img/gallery/replace/{image.name}"' in page
    assert "img-src 'self'" in page and "data:" not in page
    assert main(["leaderboard", "validate", str(subs / "replace.json"), str(subs / "mix.json")]) == 0
    out = capsys.readouterr().out
    assert f"gallery of {TASK}" in out and "no gallery" in out


def test_a_bad_gallery_stops_the_build_and_validate(tmp_path, capsys):
    subs = write_board(tmp_path / "subs", {"mix": sample_gallery("replace")})
    with pytest.raises(SubmissionError, match="field entry: 'replace' is not the entry 'mix'"):
        site.build(tmp_path / "site", subs)
    assert not (tmp_path / "site").exists()
    assert main(["leaderboard", "validate", str(subs / "mix.json")]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_skip_invalid_builds_the_entry_without_its_bad_gallery(tmp_path):
    subs = write_board(tmp_path / "subs", {"mix": sample_gallery("replace"), "replace": sample_gallery()})
    board = site.build(tmp_path / "site", subs, skip_invalid=True)
    assert sorted(e["name"] for e in board["entries"]) == ["mix", "replace"]
    assert [item["file"] for item in board["excluded"]] == ["galleries/mix.json"]  # the gallery, not the entry
    assert any("galleries" in p for item in board["excluded"] for p in item["problems"])
    page = (tmp_path / "site" / f"task-{TASK}.html").read_text()
    assert 'id="samples-replace"' in page and 'id="samples-mix"' not in page
    assert "Files left out of this build" in (tmp_path / "site" / "index.html").read_text()


def test_tables_follow_the_boards_tracks_and_keep_partial_entries_in_their_track():
    board = {"tracks": [{"name": "standard", "ranked": ["b"], "partial": ["c"], "description": "std"},
                        {"name": "extra compute", "ranked": ["a"], "partial": []},
                        {"name": "extra real data", "ranked": ["d"], "partial": []}],
             "entries": [{"name": "a", "track": "extra compute", "budget_ratio": 2.0}, {"name": "b", "track": "standard"},
                         {"name": "c", "track": "standard"}, {"name": "d", "track": "extra real data", "extra_real_fraction": 0.5}]}
    found = site.tables(board)
    assert [(t["title"], [e["name"] for e in t["rows"]]) for t in found] == [
        ("Standard track", ["b", "c"]), ("Extra compute track", ["a"]), ("Extra real data track", ["d"])]
    assert found[0]["note"] == "std" and [t["extra_real"] for t in found] == [False, False, True]
    assert [t["extra_compute"] for t in found] == [False, True, False]
    assert [t["partial"] for t in found] == [1, 0, 0]
    without = site.tables({"entries": [{**e, "rank": 1} for e in board["entries"] if e["name"] != "c"]
                           + [{"name": "c", "track": "standard", "rank": None}]})
    assert [[e["name"] for e in t["rows"]] for t in without] == [["a"], ["b", "c"], ["d"]]


def test_the_build_date_comes_from_the_data_or_is_given_and_the_site_gets_the_umask(tmp_path):
    entries = {"replace": entry()}
    newest = max(run["manifest"]["timings"]["updated"] for run in entry()["tasks"][TASK]["runs"])
    assert site.build_date(entries) == newest[:10]
    assert site.build_date(entries, "2030-01-02") == "2030-01-02"
    with pytest.raises(Exception, match="--date must look like"):
        site.build_date(entries, "yesterday")
    subs = write_board(tmp_path / "subs", {})
    old = os.umask(0o027)
    try:
        site.build(tmp_path / "site", subs, rules.LEADERBOARD, date="2030-01-02")
    finally:
        os.umask(old)
    assert "Built 2030-01-02" in (tmp_path / "site" / "index.html").read_text()
    assert stat.S_IMODE((tmp_path / "site").stat().st_mode) == 0o750  # the site folder and files follow the umask
    assert stat.S_IMODE((tmp_path / "site" / "index.html").stat().st_mode) == 0o640


def test_an_image_caption_comes_from_the_image_and_other_files_are_not_previewed(tmp_path):
    """The core previews images and texts by kind, whatever the task: a ``samples-*.png`` shows the
    caption in its Description chunk (escaped), a ``samples-*.sdf`` (a file) is kept but not read."""
    from PIL import Image

    from collapselab.engine import rundir
    from collapselab.formats.records import Manifest, Record
    from collapselab.toolkit.samples import write_sample_image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, "PNG")
    run_dir = tmp_path / "run"
    (run_dir / "artifacts").mkdir(parents=True)
    write_sample_image(run_dir / "artifacts" / "samples-gen-0000.png", buffer.getvalue(), "three molecules\u202e <b>")
    (run_dir / "artifacts" / "samples-gen-0000.sdf").write_text("not read")
    (run_dir / "artifacts" / "plain.png").write_bytes(buffer.getvalue())
    run = rundir.Run(path=run_dir, manifest=Manifest.model_construct(seed=0), records=[])  # only its seed is read
    record = Record.model_validate({
        "generation": 0, "metrics": {"loss": 1.0}, "seconds": {},
        "composition": {"real": 1, "synthetic": {}, "total": 1, "fresh_real": 0},
        "compute": {"examples": 1, "steps": 1, "samples": 0},
        "artifacts": ["artifacts/samples-gen-0000.png", "artifacts/samples-gen-0000.sdf", "artifacts/plain.png"]})
    item = artifacts.generation_item(run, record)
    assert item is not None and len(item["images"]) == 1 and "texts" not in item
    caption = item["images"][0]["caption"]
    assert caption.startswith("three molecules") and "\u202e" not in caption and "<b>" in caption  # the site escapes it
    with pytest.raises(ValueError, match="samples-"):
        write_sample_image(run_dir / "artifacts" / "grid.png", buffer.getvalue())
