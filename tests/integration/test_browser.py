"""The web page in headless Chromium (Playwright): text, CSV and URL tabs against a real server on 127.0.0.1.

Screenshots go to ``test-artifacts/`` at the repository root (git-ignored), and a failing test leaves one named
``failed-<test>.png`` there. Chromium is the system's (``/usr/bin/chromium``, or ``NERFORGE_CHROMIUM``); the tests
skip when it is absent. More of the page (runs, jobs, the entity view) is in ``test_browser_page.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serving_helpers import GazetteerPredictor, page_server, running_server, write_csv

from nerforge.serving import ServeSettings, create_app

CHROMIUM = Path(os.environ.get("NERFORGE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (install Debian's chromium or set NERFORGE_CHROMIUM)"
)


@dataclass
class Site:
    api: str
    pages: str


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    app = create_app(GazetteerPredictor(), ServeSettings(allow_private_urls=True))
    with page_server() as pages, running_server(app) as api:
        yield Site(api, pages)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


def open_page(browser, url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context on ``url``; a screenshot is saved if the test fails."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.console_errors = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.goto(url + "/")
    page.locator("#model-line", has_text="entity types").wait_for()  # (no wait_for_function: the CSP forbids eval)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        screenshot(page, f"failed-{request.node.name}.png")
    context.close()


@pytest.fixture
def page(browser, site: Site, request: pytest.FixtureRequest) -> Iterator[object]:
    yield from open_page(browser, site.api, request)


def marks(page) -> list[tuple[str, str]]:
    """(entity text, label) of each highlighted entity, in page order."""
    return [
        tuple(m)
        for m in page.eval_on_selector_all(
            "#highlighted mark.entity", "ms => ms.map(m => [m.firstChild.textContent, m.dataset.label])"
        )
    ]


def table_rows(page) -> list[list[str]]:
    return page.eval_on_selector_all("#distinct tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def read_download(download) -> list[list[str]]:
    return list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"), newline="")))


def test_browser_text_tab_highlights_and_escapes(page) -> None:
    text = 'Alice Smith met Bob in Paris. <img src=x onerror="alert(1)"> <b>Acme Corp</b>'
    page.fill("#text-input", text)
    page.click("#text-run")
    page.wait_for_selector("#highlighted mark.entity")
    assert marks(page) == [("Alice Smith", "PER"), ("Bob", "PER"), ("Paris", "LOC"), ("Acme Corp", "ORG")]
    # User text is shown as text: no element was created from it and no script ran.
    assert page.locator("#highlighted img, #highlighted b").count() == 0
    assert '<img src=x onerror="alert(1)">' in page.inner_text("#highlighted")
    assert page.dialogs == []
    legend = page.eval_on_selector_all("#legend li", "items => items.map(i => i.textContent)")
    assert legend == ["LOC", "ORG", "PER"]
    rows = table_rows(page)
    assert sorted(rows) == [
        ["Acme Corp", "ORG", "1", "0.90"],
        ["Alice Smith", "PER", "1", "0.90"],
        ["Bob", "PER", "1", "0.90"],
        ["Paris", "LOC", "1", "0.90"],
    ]
    assert "4 entities found" in page.inner_text("#status")
    screenshot(page, "browser-text.png")
    with page.expect_download() as info:
        page.click("#results-download")
    got = read_download(info.value)
    assert got[0] == ["text", "label", "start", "end", "score"]
    assert got[1:3] == [["Alice Smith", "PER", "0", "11", "0.9"], ["Bob", "PER", "16", "19", "0.9"]]


def test_browser_csv_tab_upload_and_download(page, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "notes.csv",
        [["1", "Bob visited Berlin."], ["2", "=cmd|' /C calc'!A0"], ["3", "Acme Corp hired Alice Smith in Paris."]],
    )
    page.click("#tab-csv")
    page.set_input_files("#csv-input", str(source))
    page.click("#csv-run")
    page.wait_for_selector("#highlighted .block >> nth=2")
    assert page.locator("#highlighted .block").count() == 3
    assert marks(page) == [
        ("Bob", "PER"),
        ("Berlin", "LOC"),
        ("Acme Corp", "ORG"),
        ("Alice Smith", "PER"),
        ("Paris", "LOC"),
    ]
    screenshot(page, "browser-csv.png")
    with page.expect_download() as info:
        page.click("#csv-download")
    assert info.value.suggested_filename == "notes.entities.csv"
    rows = read_download(info.value)
    assert rows[0] == ["id", "text", "entities"]
    assert [(e["text"], e["label"]) for e in json.loads(rows[1][2])] == [("Bob", "PER"), ("Berlin", "LOC")]
    assert rows[2][1].startswith("'=cmd") and json.loads(rows[2][2]) == []
    assert len(json.loads(rows[3][2])) == 3


def test_browser_url_tab(page, site: Site) -> None:
    page.click("#tab-url")
    assert page.is_hidden("#panel-text") and page.is_visible("#panel-url")
    page.fill("#url-input", f"{site.pages}/article.html")
    page.click("#url-run")
    page.wait_for_selector("#highlighted mark.entity")
    found = set(marks(page))
    assert found == {("Alice Smith", "PER"), ("Paris", "LOC"), ("Bob", "PER"), ("Acme Corp", "ORG"), ("Berlin", "LOC")}
    assert f"{site.pages}/article.html" in page.inner_text("#page-meta")
    screenshot(page, "browser-url.png")


def test_browser_shows_server_errors(page) -> None:
    page.click("#tab-url")
    page.fill("#url-input", "ftp://example.org/file")
    page.click("#url-run")
    page.wait_for_selector("#status.error")
    assert "only http and https" in page.inner_text("#status")
