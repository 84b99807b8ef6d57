"""End to end, in Debian's chromium driven by Playwright, at 1440 px and on a phone (390 px): what the
site says about how sure its order is and what each entry is.

Two builds from the committed entries: ``full`` (every submission) and ``regression`` (a subset,
their linear_regression sections only, plus a copy of the leader under a new name, so the tracks
rank entries and the leader has a tie). Checked on the pages: tie bands in the rank column, the
best entry per task marked, "not applicable" and "not run" told apart in every missing cell, the
reference badges (denominator, ceiling) and the extra-compute flag, the gate's verdict on each task
page, the score-against-synthetic-share figure, and colours and markers identical in both builds.
Screenshots go to ``$COLLAPSELAB_SCREENS`` (default ``/tmp/collapselab-screens``).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from collapselab.leaderboard import site, standing
from collapselab.scoring import styles
from tests.e2e.conftest import CHROMIUM
from tests.entries import FROZEN_BOARD, SITE_RULES

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium); no browser is downloaded")
WIDTHS = [(1440, 900), (390, 844)]
SCREENS = Path(os.environ.get("COLLAPSELAB_SCREENS", "/tmp/collapselab-screens"))
SUBSET = ["replace", "real-only", "mix", "accumulate", "accumulate-subsample", "verifier-filter-accumulate", "self-correct",
          "reward-curate-real", "accumulate-growing", "accumulate-synthetic"]
TWIN = "self-correct-again"


def _twin(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry under another name and parameters, its losses 0.01% higher: a tie with it."""
    twin = copy.deepcopy(entry)
    twin.update(name=TWIN, description="The leader again, a hair worse.")
    twin["strategy"]["params"] = {**twin["strategy"]["params"], "copy": 1}
    for section in twin["tasks"].values():
        for run in section["runs"]:
            run["manifest"]["strategy"]["params"] = twin["strategy"]["params"]
            for record in run["records"][1:]:
                record["metrics"]["loss"] *= 1.0001
    return twin


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[Path, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("standing")
    full = site.build(root / "full", FROZEN_BOARD, SITE_RULES)
    subs = root / "regression-submissions"
    subs.mkdir()
    for name in SUBSET:
        entry = json.loads((FROZEN_BOARD / f"{name}.json").read_text())
        entry["tasks"] = {"linear_regression": entry["tasks"]["linear_regression"]}
        (subs / f"{name}.json").write_text(json.dumps(entry))
        if name == "self-correct":
            (subs / f"{TWIN}.json").write_text(json.dumps(_twin(entry)))
    regression = site.build(root / "regression", subs, SITE_RULES)
    return {"full": (root / "full", full), "regression": (root / "regression", regression)}


@pytest.fixture
def open_page(pages, builds):
    """open_page(build, file, (width, height)) -> a page; fails the test on console errors."""
    return lambda build, name, size: pages((builds[build][0] / name).as_uri(), *size)


def cell(page: Any, table: str, entry: str, selector: str) -> Any:
    found = page.query_selector(f"#{table} tr[data-entry='{entry}'] {selector}")
    assert found is not None, (table, entry, selector)
    return found


def screenshot(page: Any, name: str) -> None:
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    for _ in range(200):
        if page.evaluate("Array.from(document.images).filter(i => i.offsetParent !== null).every(i => i.complete)"):
            break
        page.wait_for_timeout(25)
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / name), full_page=True)
    assert (SCREENS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}px")
def test_tied_entries_share_the_leaders_rank_band_and_reference_rows_wear_their_badges(open_page, builds, size):
    board = builds["regression"][1]
    page = open_page("regression", "index.html", size)
    runs = sum(task["runs"] for task in board["tasks"])
    assert page.text_content("#board-cost").startswith(f"The {runs} runs behind this board recorded")  # what it cost
    table = "track-augmentation"
    ranked = next(t for t in board["tracks"] if t["name"] == "augmentation")["ranked"]
    by_name = {e["name"]: e for e in board["entries"]}
    assert ranked[:2] == ["self-correct", TWIN]
    for name in ranked:
        rank = cell(page, table, name, "td.rank")
        expected = standing.band_text(tuple(by_name[name]["rank_band"]))
        assert rank.get_attribute("data-band") == expected and rank.is_visible()
        assert rank.inner_text().strip() == expected
    assert cell(page, table, "self-correct", "td.rank").inner_text().strip() == "1–2"  # the leader and its twin
    assert cell(page, table, TWIN, "td.rank").inner_text().strip() == "1–2"
    banded = [n for n in ranked if by_name[n]["rank_band"][0] != by_name[n]["rank_band"][1]]
    assert len(banded) >= 4  # accumulate and accumulate-subsample overlap too
    ceiling = cell(page, table, "real-only", ".reference-badge")
    assert ceiling.is_visible() and ceiling.get_attribute("data-reference") == "ceiling" and ceiling.inner_text() == "ceiling"
    assert cell(page, table, "real-only", "td.rank").inner_text().strip() == "not ranked"
    denominator = cell(page, "track-closed-loop", "replace", ".reference-badge")
    assert denominator.is_visible() and denominator.get_attribute("data-reference") == "denominator"
    assert "denominator" in denominator.inner_text()
    assert cell(page, "track-closed-loop", "replace", "td.rank").inner_text().strip() == "not ranked"
    flag = cell(page, "track-augmentation-extra-compute", "accumulate-growing", ".badge.extra-compute")
    assert flag.is_visible() and flag.inner_text() == "extra compute"
    assert page.query_selector_all(f"#{table} tr[data-entry='mix'] .badge.extra-compute") == []
    for name in ("mix", "real-only", "self-correct"):  # the synthetic share on every row
        share = page.query_selector(f"#{table} tr[data-entry='{name}'] td[data-label='Synthetic share']")
        assert share.is_visible() and share.inner_text().strip().endswith("%")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"standing-regression-index-{size[0]}.png")


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}px")
def test_the_best_entry_per_task_is_marked_and_missing_tasks_say_why(open_page, builds, size):
    board = builds["full"][1]
    page = open_page("full", "index.html", size)
    for table in site.tables(board):
        for task in board["tasks"]:
            marked = page.eval_on_selector_all(
                f"#{table['id']} td[data-mark='best'][data-label='{task['name']} score']",
                "cells => cells.map(c => c.closest('tr').dataset.entry)")
            assert marked == table["best"][task["name"]]["best"], (table["id"], task["name"])
    best = cell(page, "track-augmentation", "mix", "td[data-label='mnist_vae score'] .mark.best")
    assert best.is_visible() and "best" in best.inner_text()
    tied = cell(page, "track-augmentation", "accumulate", "td[data-label='mnist_vae score'] .mark.tied")
    assert tied.is_visible()

    inapplicable = cell(page, "track-augmentation", "self-correct", "td[data-label='mnist_vae score']")
    not_run = cell(page, "track-augmentation", "self-correct", "td[data-label='conformer_diffusion score']")
    assert inapplicable.get_attribute("data-missing") == "not-applicable" and inapplicable.inner_text().strip() == "not applicable"
    assert "'correct'" in inapplicable.get_attribute("title")
    assert not_run.get_attribute("data-missing") == "not-run" and not_run.inner_text().strip() == "not run"
    assert inapplicable.is_visible() and not_run.is_visible()
    looks = [c.evaluate("c => [getComputedStyle(c).color, getComputedStyle(c).fontStyle, getComputedStyle(c).backgroundImage]")
             for c in (inapplicable, not_run)]
    assert looks[0] != looks[1]
    # every missing cell says which it is, and only missing cells do
    states = page.eval_on_selector_all("table.overall td.missing", "cells => cells.map(c => [c.dataset.missing, c.innerText.trim()])")
    assert states and {tuple(s) for s in states} == {("not-applicable", "not applicable"), ("not-run", "not run")}
    shown = [e for table in site.tables(board) for e in table["rows"]]  # the reference rows head every table
    expected = sum(2 for e in shown for t in board["tasks"] if t["name"] not in e["tasks"])
    assert len(states) == expected
    assert sum(1 for s in states if s[0] == "not-applicable") == 2 * sum(len(e["not_applicable"]) for e in shown)

    task = open_page("full", "task-mnist_vae.html", size)
    absent = dict(task.eval_on_selector_all("#absent li", "items => items.map(i => [i.dataset.entry, i.dataset.missing])"))
    assert absent["self-correct"] == "not-applicable" and absent["accumulate-synthetic"] == "not-run"
    assert task.is_visible("#absent li[data-entry='self-correct'] .missing.not-applicable")
    mark = task.query_selector("#entries tr[data-entry='mix'] td[data-mark='best'] .mark.best")
    assert mark is not None and mark.is_visible()
    screenshot(page, f"standing-full-index-{size[0]}.png")


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}px")
def test_each_task_page_shows_the_gate_and_score_against_synthetic_share(open_page, builds, size):
    board = builds["full"][1]
    for task in board["tasks"]:
        page = open_page("full", f"task-{task['name']}.html", size)
        gate = page.query_selector("#gate")
        assert gate.is_visible()
        verdict = task["degradation"]
        assert gate.get_attribute("data-verdict") == ("pass" if verdict["significant"] else "fail")
        assert gate.get_attribute("data-df") == str(verdict["df"]) and gate.get_attribute("data-level") == str(verdict["level"])
        assert float(gate.get_attribute("data-p")) == pytest.approx(verdict["p_value"], rel=1e-12)
        assert ("Passes" if verdict["significant"] else "Fails") in gate.inner_text()
        frontier = page.eval_on_selector_all("#entries .badge.frontier:not(.cost)", "bs => bs.map(b => b.closest('tr').dataset.entry)")
        assert sorted(frontier) == task["frontier"]
        cheapest = page.eval_on_selector_all("#entries .badge.frontier.cost", "bs => bs.map(b => b.closest('tr').dataset.entry)")
        assert sorted(cheapest) == sorted(n for names in task["cost_frontier"].values() for n in names)
        assert page.is_visible("#cost-title") == any(task["cost_frontier"].values())
        if task["name"] == "linear_regression":
            figure = page.query_selector("#share-title ~ .figure-switch img.linear")
            figure.scroll_into_view_if_needed()
            page.wait_for_timeout(100)
            assert figure.evaluate("i => i.complete && i.naturalWidth") > 400
            caption = page.inner_text("#share-title ~ .figure-switch figcaption")
            assert "real-only" in caption and "at least as high" in caption and "self-correct" in caption
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            screenshot(page, f"standing-full-task-linear_regression-{size[0]}.png")


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}px")
def test_colours_and_markers_are_the_same_in_builds_with_different_entries(open_page, builds, size):
    swatches = {}
    for build in ("full", "regression"):
        page = open_page(build, "index.html", size)
        swatches[build] = dict(page.eval_on_selector_all(
            "table.overall tr[data-entry]",
            "rows => rows.map(r => { const s = r.querySelector('svg.swatch'); const shape = s.firstElementChild;"
            " return [r.dataset.entry, [s.dataset.colour, s.dataset.marker, shape.getAttribute('fill'), shape.tagName,"
            " getComputedStyle(shape).fill]]; })"))
    full, regression = swatches["full"], swatches["regression"]
    assert set(full) != set(regression) and len(set(full) & set(regression)) == len(SUBSET)
    for name in set(full) & set(regression):
        assert full[name] == regression[name], name
    for name, (colour, marker, fill, _, _) in {**full, **regression}.items():
        assert (colour, marker) == (styles.style(name).colour, styles.style(name).marker) and fill == colour
    assert regression[TWIN][:2] == [styles.hashed(TWIN).colour, styles.hashed(TWIN).marker]
    assert len({tuple(v[:2]) for v in full.values()}) == len(full)  # no two entries look alike
