"""End to end: the built site in a real headless browser (Debian's chromium), opened from disk.

Every entry is listed, clicking a column header re-sorts the table, submitted HTML shows as
text, the Content-Security-Policy lets the site's own script and images through, and a
screenshot is saved in the test's folder.
"""

from __future__ import annotations

import json
import shutil

import pytest

from collapselab.leaderboard import SUBMISSIONS, site
from tests.e2e.chromium_cdp import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)"
)
HOSTILE = "<script>document.title = 'pwned'</script><b>bold</b>"


def rows(browser: Browser, table: str) -> list[str]:
    return browser.evaluate(f"Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => r.dataset.entry)")


def column(browser: Browser, table: str, col: int) -> list[float | None]:
    return browser.evaluate(
        f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
        f".map(r => r.cells[{col}].dataset.value === '' ? null : parseFloat(r.cells[{col}].dataset.value))"
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    subs = root / "submissions"
    shutil.copytree(SUBMISSIONS, subs)
    hostile = json.loads((SUBMISSIONS / "mix.json").read_text())
    hostile.update(name="html-in-text", description=HOSTILE)
    (subs / "html-in-text.json").write_text(json.dumps(hostile))
    board = site.build(root / "site", subs)
    return root, board


def test_table_lists_every_entry_and_sorts_on_header_clicks(built, tmp_path):
    root, board = built
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        browser.open((root / "site" / "index.html").as_uri())
        assert browser.evaluate("document.title") == "CollapseLab leaderboard"
        listed = rows(browser, "overall") + rows(browser, "extra")
        assert sorted(listed) == sorted(entry["name"] for entry in board["entries"])
        assert rows(browser, "extra") == ["fresh-real"]

        ranks = column(browser, "overall", 0)
        assert ranks == sorted(ranks)
        browser.click("#overall th[data-col='2'] button")  # overall score: best first
        scores = column(browser, "overall", 2)
        assert scores == sorted(scores, reverse=True)
        assert browser.evaluate("document.querySelector(\"#overall th[data-col='2']\").getAttribute('aria-sort')") == "descending"
        browser.screenshot(tmp_path / "leaderboard.png")
        browser.click("#overall th[data-col='2'] button")
        assert column(browser, "overall", 2) == sorted(scores)
        browser.click("#overall th[data-col='1'] button")  # entry names, A to Z
        assert rows(browser, "overall") == sorted(rows(browser, "overall"))

        description = "document.querySelector('tr[data-entry=\"html-in-text\"] .description')"
        assert browser.evaluate(f"{description}.textContent") == HOSTILE
        assert browser.evaluate(f"{description}.children.length") == 0
        assert browser.evaluate("document.title") == "CollapseLab leaderboard"

        task = board["tasks"][0]["name"]
        browser.open((root / "site" / f"task-{task}.html").as_uri())
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 400)")
        assert sorted(rows(browser, "entries")) == sorted(e["name"] for e in board["entries"] if task in e["tasks"])
        browser.screenshot(tmp_path / f"task-{task}.png")
        assert browser.console_problems() == []
    shot = (tmp_path / "leaderboard.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
