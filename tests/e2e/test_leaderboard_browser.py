"""End to end: the built site in a real headless browser (Debian's chromium driven by Playwright),
opened from disk, at desktop widths (1400 and 2200 px) and on a phone (390 px).

Every column of the overall tables is on screen at desktop widths (bounding boxes inside the
viewport, no horizontal scrolling), a phone gets cards without horizontal page scroll and a
navigation that wraps, clicking a column header re-sorts, a gallery opens and its images load,
the log-scale switch swaps the figure, submitted HTML shows as text, and the Content-Security-
Policy lets the site's own script and images through (no console errors). Screenshots go to the
test's folder and are copied to ``$COLLAPSELAB_SCREENS`` (default ``/tmp/collapselab-screens``).
No browser is downloaded: the tests use the system's chromium and are skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from collapselab.engine.rundir import find_runs
from collapselab.formats import gallery
from collapselab.leaderboard import site
from collapselab.operations.publishing import artifacts
from tests.e2e.conftest import CHROMIUM
from tests.entries import FROZEN_BOARD, SITE_RULES

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium; .ci/run installs it); no browser is downloaded"
)
DESKTOP = [(1400, 900), (2200, 1200)]
PHONE = (390, 844)
HOSTILE = "<script>document.title = 'pwned'</script><b>bold</b>"
SCREENS = Path(os.environ.get("COLLAPSELAB_SCREENS", "/tmp/collapselab-screens"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, sample_runs) -> tuple[Path, dict[str, Any]]:
    """A complete board (frozen test data), a hostile copy of one of its entries, and galleries made
    from real sample runs."""
    root = tmp_path_factory.mktemp("browser")
    subs = root / "submissions"
    shutil.copytree(FROZEN_BOARD, subs)
    # a copy of the reference (it covers every task the leaderboard ranks), made a strategy of its own
    hostile = json.loads((FROZEN_BOARD / "replace.json").read_text())
    hostile.update(name="html-in-text", description=HOSTILE + " " + "a long description " * 12)
    hostile["strategy"]["params"] = {"copy": 1}
    for section in hostile["tasks"].values():
        for run in section["runs"]:
            run["manifest"]["strategy"]["params"] = {"copy": 1}
    (subs / "html-in-text.json").write_text(json.dumps(hostile))
    runs = find_runs([sample_runs])
    (subs / "galleries").mkdir(exist_ok=True)
    for name in ("replace", "html-in-text"):
        data = artifacts.entry_gallery(runs, name)
        data["tasks"] = {task: samples for task, samples in data["tasks"].items() if task in hostile["tasks"]}
        if name == "html-in-text":
            data["tasks"]["text_lm"]["generations"][0]["texts"][0] = HOSTILE
        (subs / "galleries" / f"{name}.json").write_text(json.dumps(data))
    # the site, not the rules, is under test: entries made at an earlier preset still show every column
    board = site.build(root / "site", subs, SITE_RULES)
    return root / "site", board


@pytest.fixture
def open_page(pages, built):
    """open_page(name, width, height) -> a page on the built site (``name`` may end in ``#anchor``)."""
    def opener(name: str, width: int, height: int) -> Any:
        file, _, anchor = name.partition("#")
        return pages((built[0] / file).as_uri() + (f"#{anchor}" if anchor else ""), width, height)

    return opener


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    wait_for_images(page)
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENS / name)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    return path


def wait_for_images(page: Any) -> None:
    """Load every visible image (lazy ones too) and wait for them; the CSP forbids the string
    evaluation of wait_for_function, so poll from here."""
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    for _ in range(200):
        if page.evaluate("Array.from(document.images).filter(i => i.offsetParent !== null).every(i => i.complete)"):
            return
        page.wait_for_timeout(25)
    raise AssertionError("images did not load")


def rows(page: Any, table: str) -> list[str]:
    return page.evaluate(f"Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => r.dataset.entry)")


def column(page: Any, table: str, col: int) -> list[float | None]:
    return page.evaluate(
        f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
        f".map(r => r.cells[{col}].dataset.value === '' ? null : parseFloat(r.cells[{col}].dataset.value))"
    )


def in_order(values: list[float | None], reverse: bool = False) -> list[float | None]:
    """The order the tables sort a column in: by value, empty cells last whatever the direction."""
    present = sorted((v for v in values if v is not None), reverse=reverse)
    return present + [None] * (len(values) - len(present))


OUTSIDE = """(width) => Array.from(document.querySelectorAll(SELECTOR)).filter(e => e.offsetParent !== null).map(e => {
  const box = e.getBoundingClientRect();
  return (box.left < -0.5 || box.right > width + 0.5) ? (e.textContent.trim().slice(0, 40) + ' ' + box.left + '..' + box.right) : null;
}).filter(x => x)"""


def outside(page: Any, selector: str, width: int) -> list[str]:
    return page.evaluate(OUTSIDE.replace("SELECTOR", json.dumps(selector)), width)


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("size", DESKTOP, ids=lambda s: f"{s[0]}px")
def test_desktop_shows_every_column_and_sorts_on_header_clicks(open_page, built, tmp_path, size):
    width, height = size
    page = open_page("index.html", width, height)
    board = built[1]
    assert page.title() == "CollapseLab leaderboard"
    tables = page.evaluate("Array.from(document.querySelectorAll('table.overall')).map(t => t.id)")
    assert tables == [table["id"] for table in site.tables(board)] and "track-closed-loop" in tables
    listed = [name for table in tables for name in rows(page, table)]
    references = [entry["name"] for entry in board["entries"] if entry["reference"]]
    assert sorted(n for n in listed if n not in references) == sorted(
        entry["name"] for entry in board["entries"] if not entry["reference"])  # every other entry, once
    assert all(set(references) <= set(rows(page, table)) for table in tables)  # the references, in every table
    ids = page.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
    assert len(ids) == len(set(ids)) and all(f"entry-{name}" in ids for name in references)  # one row per id
    if "partial" in tables:
        assert column(page, "partial", 2) == [None] * len(rows(page, "partial"))  # no overall score, no rank
    headers = page.evaluate("document.querySelectorAll('#track-closed-loop thead tr.labels th').length")
    assert headers == 4 + 2 * len(board["tasks"]) + 4  # resources: synthetic share, time, real / gen, seeds
    assert outside(page, "table.overall th, table.overall td", width) == []
    assert no_horizontal_scroll(page)
    assert page.evaluate("Array.from(document.querySelectorAll('.table-wrap')).every(w => w.scrollWidth <= w.clientWidth)")

    ranks = column(page, "track-closed-loop", 0)
    assert ranks[0] is None  # the reference row (replace) heads its track, not ranked
    assert [r for r in ranks if r is not None] == sorted(r for r in ranks if r is not None)
    page.click("#track-closed-loop th[data-col='2'] button")  # overall score: best first, partial entries (none) last
    scores = column(page, "track-closed-loop", 2)
    assert scores == in_order(scores, reverse=True)
    assert page.get_attribute("#track-closed-loop th[data-col='2']", "aria-sort") == "descending"
    screenshot(page, tmp_path, f"index-{width}.png")
    page.click("#track-closed-loop th[data-col='2'] button")
    assert column(page, "track-closed-loop", 2) == in_order(scores)
    page.click("#track-closed-loop th[data-col='1'] button")  # entry names, A to Z
    assert rows(page, "track-closed-loop") == sorted(rows(page, "track-closed-loop"))

    for task in board["tasks"]:
        task_page = open_page(f"task-{task['name']}.html", width, height)
        assert outside(task_page, "#entries th, #entries td", width) == []
        assert no_horizontal_scroll(task_page)


def test_descriptions_take_one_line_and_open_on_click(open_page):
    page = open_page("index.html", *DESKTOP[0])
    summary = "tr[data-entry='html-in-text'] details.description summary"
    closed = page.eval_on_selector(summary, "s => s.getBoundingClientRect().height")
    page.click(summary)
    opened = page.eval_on_selector(summary, "s => s.getBoundingClientRect().height")
    assert closed < 20 < 2 * closed < opened
    assert page.eval_on_selector("tr[data-entry='html-in-text'] details.description", "d => d.open")


def test_submitted_html_shows_as_text(open_page):
    page = open_page("index.html", *DESKTOP[0])
    description = page.query_selector("tr[data-entry='html-in-text'] .description summary")
    assert description.text_content().startswith(HOSTILE) and description.evaluate("d => d.children.length") == 0
    assert page.title() == "CollapseLab leaderboard"
    text_page = open_page("task-text_lm.html", *DESKTOP[0])
    text_page.click("#samples-html-in-text > summary")
    text_page.click("#samples-html-in-text details.excerpt > summary >> nth=0")
    shown = text_page.query_selector("#samples-html-in-text details.excerpt pre")
    assert shown.is_visible() and shown.text_content() == HOSTILE and shown.evaluate("p => p.children.length") == 0
    side = text_page.query_selector("#compare .compare-row[data-entry='html-in-text'] pre.sample")  # generation 0's first sample
    assert side.is_visible() and side.text_content() == HOSTILE and side.evaluate("p => p.children.length") == 0
    assert text_page.title().startswith("text_lm")


def test_a_gallery_opens_and_its_images_load(open_page, tmp_path):
    page = open_page("task-mnist_vae.html", *DESKTOP[0])
    images = "#samples-replace img"
    assert not page.is_visible(images)
    page.click("#samples-replace > summary")
    assert page.eval_on_selector("#samples-replace", "d => d.open")
    page.query_selector(images).scroll_into_view_if_needed()
    wait_for_images(page)
    loaded = page.eval_on_selector_all(images, "all => all.map(i => i.complete && i.naturalWidth)")
    assert len(loaded) == 2 and all(width == artifacts.IMAGE_WIDTH for width in loaded)  # generations 0 and 1
    screenshot(page, tmp_path, "task-mnist_vae-gallery-1400.png")
    # side by side: every entry with samples, its first and last generation, in one view
    in_table = [name for name in rows(page, "entries") if name in ("replace", "html-in-text")]  # the entries table's order
    assert page.eval_on_selector_all("#compare .compare-row", "all => all.map(r => r.dataset.entry)") == in_table and len(in_table) == 2
    assert page.eval_on_selector_all("#compare .compare-row p.generation", "all => all.map(p => p.textContent)") == [
        "generation 0", "generation 1"] * 2
    page.query_selector("#compare").scroll_into_view_if_needed()
    wait_for_images(page)
    assert page.eval_on_selector_all("#compare img", "all => all.map(i => i.naturalWidth)") == [artifacts.IMAGE_WIDTH] * 4
    pairs = "all => all.map(a => [a.getAttribute('href'), a.firstElementChild.getAttribute('src')])"
    links = page.eval_on_selector_all("#compare a", pairs)
    assert len(links) == 4 and all(href == src for href, src in links)  # each opens full size
    conformers = open_page("task-conformer_diffusion.html", *DESKTOP[0])
    conformers.click("#samples-replace > summary")
    conformers.query_selector("#samples-replace img").scroll_into_view_if_needed()
    wait_for_images(conformers)
    assert conformers.eval_on_selector_all("#samples-replace img", "all => all.every(i => i.naturalWidth > 0)")
    assert gallery.MAX_IMAGES >= 1


def test_the_log_scale_switch_swaps_the_figure(open_page):
    page = open_page("task-linear_regression.html", *DESKTOP[0])
    assert page.is_visible("#log-loss ~ figure img.linear") and not page.is_visible("#log-loss ~ figure img.log")
    page.click("label[for='log-loss']")
    assert page.is_visible("#log-loss ~ figure img.log") and not page.is_visible("#log-loss ~ figure img.linear")
    wait_for_images(page)
    assert page.eval_on_selector("#log-loss ~ figure img.log", "i => i.naturalWidth") > 400


def test_a_permalink_targets_its_row(open_page, built):
    page = open_page("index.html#entry-mix", *DESKTOP[0])
    assert page.evaluate("document.querySelector(':target').dataset.entry") == "mix"
    assert page.get_attribute("#entry-mix a.permalink", "href") == "#entry-mix"
    assert "Built " in page.text_content("p.stamp") and "collapselab" in page.text_content("p.stamp")


def test_a_phone_gets_cards_without_horizontal_scroll(open_page, built, tmp_path):
    width, height = PHONE
    for name in ["index.html", *(f"task-{task['name']}.html" for task in built[1]["tasks"])]:
        page = open_page(name, width, height)
        assert no_horizontal_scroll(page), name
        assert outside(page, "header.site a, table.board td, table.board th, figure img", width) == [], name
    page = open_page("index.html", width, height)
    card = page.eval_on_selector("#track-closed-loop tbody tr", "r => getComputedStyle(r).display")
    assert card == "grid"
    tops = page.eval_on_selector_all("header.site nav a", "all => all.map(a => Math.round(a.getBoundingClientRect().top))")
    nav_rows = len(set(tops))
    assert nav_rows >= 2  # the navigation wraps instead of overflowing
    page.click("#track-closed-loop th[data-col='2'] button")  # sorting works on the card view too
    scores = column(page, "track-closed-loop", 2)
    assert scores == in_order(scores, reverse=True)
    screenshot(page, tmp_path, "index-390.png")
    task = open_page("task-mnist_vae.html", width, height)
    task.click("#samples-replace > summary")
    assert no_horizontal_scroll(task)
    screenshot(task, tmp_path, "task-mnist_vae-390.png")
