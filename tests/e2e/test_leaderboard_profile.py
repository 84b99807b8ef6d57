"""End to end, in Debian's chromium driven by Playwright, at 1440 px and on a phone (390 px): the
collapse profile on the task pages and the index, the scores CSV downloaded from the index's link,
each entry's provenance and the footer's README links. Built from the frozen complete board.
Screenshots go to ``$COLLAPSELAB_SCREENS`` (default ``/tmp/collapselab-screens``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collapselab.leaderboard import profile_view, site
from collapselab.scoring import profile
from tests.e2e.conftest import CHROMIUM
from tests.e2e.test_leaderboard_standing import WIDTHS, screenshot
from tests.entries import FROZEN_BOARD, SITE_RULES

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium)")
TASK = "linear_regression"
README = "https://example.org/collapselab/README.md"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("profile") / "site"
    return out, site.build(out, FROZEN_BOARD, SITE_RULES, readme=README)


@pytest.fixture
def open_page(pages, built):
    return lambda name, size: pages((built[0] / name).as_uri(), *size)


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}px")
def test_the_task_page_table_tells_collapsed_not_collapsed_and_not_measurable_apart(open_page, built, size):
    board = built[1]
    rows = [e for e in board["entries"] if TASK in e["tasks"]]
    page = open_page(f"task-{TASK}.html", size)
    table = page.query_selector("#profile")
    assert table.is_visible()
    headers = page.eval_on_selector_all("#profile thead th[data-definition]", "hs => hs.map(h => h.dataset.definition)")
    assert headers == list(profile.DEFINITIONS)
    shown = page.eval_on_selector_all("#profile tbody tr", "rs => rs.map(r => r.dataset.entry)")
    assert sorted(shown) == sorted(e["name"] for e in rows)
    looks = {}
    for entry in rows:
        for name in profile.DEFINITIONS:
            field = entry["tasks"][TASK]["profile"][name]
            cell = page.query_selector(f"#profile tr[data-entry='{entry['name']}'] td[data-definition='{name}']")
            kind, mark = profile_view.MARKS[field["verdict"]]
            assert cell.get_attribute("data-verdict") == kind
            assert cell.query_selector(".pmark").inner_text() == mark
            said = cell.query_selector(".sr-only").text_content()
            assert said == f"{profile_view.LABELS[name][0]}: {profile_view.cell_text(field)}"
            assert profile_view.cell_text(field) in cell.get_attribute("title")
            looks.setdefault(kind, cell.evaluate("c => [getComputedStyle(c.querySelector('.pmark')).color, "
                                                 "c.querySelector('.pmark').innerText, getComputedStyle(c).backgroundColor]"))
    assert set(looks) == {"collapsed", "not-collapsed", "not-measurable"}
    for first, second in (("collapsed", "not-collapsed"), ("collapsed", "not-measurable"), ("not-collapsed", "not-measurable")):
        assert looks[first][0] != looks[second][0] and looks[first][1] != looks[second][1], (first, second)
    rules = page.eval_on_selector_all("#profile-rules dt", "ds => ds.map(d => d.id)")
    assert rules == [f"rule-{name}" for name in profile.DEFINITIONS]
    divergence = page.query_selector("#rule-divergence + dd").text_content()
    assert next(e for e in rows if e["name"] == "replace")["tasks"][TASK]["profile"]["divergence"]["rule"] in divergence
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"profile-task-{TASK}-{size[0]}.png")


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}px")
def test_the_index_links_scores_csv_shows_profile_strips_provenance_and_readme_links(open_page, built, size):
    out, board = built
    page = open_page("index.html", size)
    link = page.query_selector("#downloads a#scores-csv")
    assert link.is_visible() and link.inner_text() == "scores.csv"
    with page.expect_download() as waiting:
        link.click()
    download = waiting.value
    assert download.suggested_filename == "scores.csv"
    table = pd.read_csv(io.StringIO(Path(download.path()).read_text(encoding="utf-8")), keep_default_na=False)
    assert len(table) == sum(len(e["tasks"]) for e in board["entries"])
    assert set(table["entry"]) == {e["name"] for e in board["entries"]}
    assert page.query_selector("#downloads a[href='data/leaderboard.json']").is_visible()

    strips = page.eval_on_selector_all(".profile-strip", "ss => ss.map(s => [s.dataset.entry, s.dataset.task, "
                                                          "s.querySelectorAll('.pcell').length, s.getAttribute('href')])")
    shown = [e for table in site.tables(board) for e in table["rows"]]  # the reference rows head every table
    assert len(strips) == sum(len(e["tasks"]) for e in shown)
    assert all(count == len(profile.DEFINITIONS) and href == f"task-{task}.html#profile-{name}" for name, task, count, href in strips)
    strip = page.query_selector(".profile-strip[data-entry='replace'][data-task='linear_regression']")
    assert strip.is_visible()
    replace = next(e for e in board["entries"] if e["name"] == "replace")
    assert strip.get_attribute("aria-label").endswith(profile_view.summary(replace["tasks"][TASK]))

    for entry in board["entries"]:
        made = page.query_selector(f"dl.provenance[data-entry='{entry['name']}']")
        assert made is not None
        text = made.text_content()
        assert entry["provenance"]["commits"][0][:12] in text and entry["provenance"]["updated"][:10] in text
        assert all(f"{task} v{version}" in text for task, version in entry["provenance"]["task_versions"].items())
        assert (entry["citation"] or "none given") in text and entry["strategy"] in text
    row = page.query_selector("#track-closed-loop tr[data-entry='replace'] details.description")
    row.query_selector("summary").click()
    assert row.query_selector("dl.provenance .commits").is_visible()

    assert page.query_selector("footer #readme-link").get_attribute("href") == README
    assert page.query_selector("footer #submit-link").get_attribute("href") == README + "#submit-a-strategy"
    screenshot(page, f"profile-index-{size[0]}.png")
    strip.click()
    page.wait_for_url(f"**/task-{TASK}.html#profile-replace")
    assert page.evaluate("document.querySelector(':target').dataset.entry") == "replace"
