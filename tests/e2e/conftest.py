"""What the browser tests share: Debian's chromium (never downloaded) driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((c for c in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if c and Path(c).is_file()),
                None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def pages(browser: Any) -> Iterator[Callable[[str, int, int], Any]]:
    """pages(uri, width, height) -> a new page at that viewport (downloads accepted); the test fails if
    any page logs a console error or warning or raises, and every page is closed at its end."""
    opened, problems = [], []

    def opener(uri: str, width: int, height: int) -> Any:
        page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
        page.on("console", lambda message: problems.append(message.text) if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(uri)
        opened.append(page)
        return page

    yield opener
    for page in opened:
        page.close()
    assert problems == []
