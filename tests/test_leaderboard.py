"""The leaderboard builder: scores from the scorer, tracks, coverage ranking, escaping of
submitted text, byte-identical rebuilds, refusals that leave the previous site alone, and
figures that stay readable with many entries."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from collapselab.cli.main import main
from collapselab.errors import CollapseLabError, SubmissionError
from collapselab.leaderboard import site
from collapselab.scoring import plots
from tests.entries import SMOKE, TASK, make_entries, write_all

HOSTILE = '<script>alert("x")</script><b>bold</b>'


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    return make_entries(tmp_path_factory.mktemp("entries"), {"replace": "replace", "mix": "mix", "accumulate": "accumulate"})


def committed(entries, name: str) -> dict[str, Any]:
    return copy.deepcopy(entries[name])


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_escapes_submitted_text_never_imports_submitted_code_and_rebuilds_byte_identical(entries, tmp_path):
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    hostile = committed(entries, "mix")
    hostile.update(name="html-in-text", description=HOSTILE, url="https://github.com/someone/method?a=1&b=2")
    hostile["strategy"].update(name=f"{evil}:Evil", citation="<img src=x onerror=alert(1)>")
    for run in hostile["tasks"][TASK]["runs"]:
        run["manifest"]["strategy"].update(name=hostile["strategy"]["name"], spec=hostile["strategy"]["name"],
                                           citation=hostile["strategy"]["citation"])
        for record in run["records"][1:]:
            record["metrics"]["loss"] *= 1.001  # its own runs, not mix's again
    subs = write_all(tmp_path / "subs", [committed(entries, n) for n in entries] + [hostile])
    out = tmp_path / "site"
    site.build(out, subs, SMOKE)
    assert not (tmp_path / "imported").exists()
    first = files(out)
    index = first["index.html"].decode()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in index
    assert "<script>alert" not in index and "<b>bold" not in index
    assert 'href="https://github.com/someone/method?a=1&amp;b=2"' in index
    page = first[f"task-{TASK}.html"].decode()
    assert "html-in-text" in page and "<script>alert" not in page and "<img src=x" not in page
    assert first["data/submissions/html-in-text.json"] == (subs / "html-in-text.json").read_bytes()
    assert first[f"img/{TASK}-loss.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert {f"task-{TASK}.html", "data/leaderboard.json", "static/sort.js", f"img/{TASK}-metrics.png"} <= set(first)

    site.build(out, subs, SMOKE)
    assert files(out) == first
    site.build(tmp_path / "elsewhere", subs, SMOKE)
    assert files(tmp_path / "elsewhere") == first


def test_build_refuses_bad_input_and_foreign_folders_and_keeps_the_old_site(entries, tmp_path):
    subs = write_all(tmp_path / "subs", [committed(entries, n) for n in ("replace", "mix")])
    out = tmp_path / "site"
    site.build(out, subs, SMOKE)
    before = files(out)

    bad = committed(entries, "accumulate")
    bad["preset"] = "cpu"
    write_all(subs, [bad])
    with pytest.raises(SubmissionError, match=r"accumulate.json: field preset: 'cpu'"):
        site.build(out, subs, SMOKE)
    (subs / "accumulate.json").unlink()

    (subs / "renamed.json").write_text((subs / "mix.json").read_text())
    with pytest.raises(SubmissionError, match=r"renamed.json: field name: the entry 'mix' must be stored as mix.json"):
        site.build(out, subs, SMOKE)
    (subs / "renamed.json").unlink()

    second = committed(entries, "replace")
    second["name"] = "replace-again"
    write_all(subs, [second])
    with pytest.raises(SubmissionError, match="replace-again.json: entry 'replace-again' runs 'replace', the leaderboard's reference"):
        site.build(out, subs, SMOKE)
    assert files(out) == before
    (subs / "replace-again.json").unlink()

    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(CollapseLabError, match="is not a leaderboard build"):
        site.build(foreign, subs, SMOKE)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_build_command_prints_the_overall_table(entries, tmp_path, capsys):
    subs = write_all(tmp_path / "subs", [committed(entries, n) for n in entries])
    assert main(["leaderboard", "build", "--preset", "smoke", "--out", str(tmp_path / "site"), "--submissions", str(subs)]) == 0
    out = capsys.readouterr().out
    assert "closed-loop track" in out and "augmentation track" in out
    for name in entries:
        assert f" {name} " in out
    assert f"wrote {tmp_path / 'site' / 'index.html'}: {len(entries)} entries, 1 task(s)" in out


def test_an_entry_whose_generation_zero_hides_extra_compute_is_refused(entries, tmp_path):
    """Extra compute is read against what generation 0 spent; an entry that inflates generation 0's
    compute (to hide bigger fits later) is refused, naming the field."""
    from collapselab.leaderboard import validate

    forged = committed(entries, "accumulate")
    forged["name"] = "forged"
    for run in forged["tasks"][TASK]["runs"]:
        for record in run["records"]:
            record["compute"]["examples"] = 10 * record["compute"]["examples"]
    _, problems = validate.load_entries(write_all(tmp_path / "subs", [committed(entries, "replace"), forged]), SMOKE)
    assert any("records/0/compute/examples: generation 0 spent 200" in p and "standard fit spends 20" in p
               for p in validate.flat(problems)), problems


def test_task_figures_draw_the_best_entries_with_their_legend_outside_the_axes(entries, tmp_path, monkeypatch):
    many = [committed(entries, "replace")]
    for index in range(25):  # 25 entries beside the reference, each with its own losses
        entry = committed(entries, ("mix", "accumulate")[index % 2])
        entry["name"] = f"{entry['name']}-{index:02d}"
        spec = f"variants.py:Variant{index:02d}"  # each its own strategy: one strategy and parameter set, one entry
        entry["strategy"]["name"] = spec
        for run in entry["tasks"][TASK]["runs"]:
            run["manifest"]["strategy"].update(name=spec, spec=spec)
            for record in run["records"][1:]:
                record["metrics"]["loss"] *= 1 + index / 50
        many.append(entry)
    drawn = {}
    save = plots._save

    def keep(fig, path):
        fig.canvas.draw()  # lays the figure out as saving it does
        renderer = fig.canvas.get_renderer()
        boxes = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
        drawn[path.name] = (fig, [legend.get_window_extent(renderer) for legend in fig.legends], boxes)
        save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    board = site.build(tmp_path / "site", write_all(tmp_path / "subs", many), SMOKE)

    rows = sorted((e for e in board["entries"] if TASK in e["tasks"]), key=lambda e: -e["tasks"][TASK]["score"]["mean"])
    best = [e["name"] for e in rows[:site.CURVES_SHOWN]]
    assert "replace" not in best  # the reference is drawn beside the best, not in their place
    for name in (f"{TASK}-loss.png", f"{TASK}-metrics.png"):
        fig, (legend_box,), panels = drawn[name]
        assert not [ax for ax in fig.axes if ax.get_legend() is not None]  # no legend inside a panel
        labels = [text.get_text().split(" (n=")[0] for text in fig.legends[0].get_texts()]
        assert sorted(labels) == sorted([*best, "replace"]), name
        assert not [panel for panel in panels if legend_box.overlaps(panel)], f"{name}: the legend covers a panel"
    page = (tmp_path / "site" / f"task-{TASK}.html").read_text()
    assert f"Drawn: {site.CURVES_SHOWN + 1} of 26 entries (the best by score, and the reference)" in page
    assert all(f'data-entry="{e["name"]}"' in page for e in many)  # the table lists every entry
