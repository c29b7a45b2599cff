"""The web page in headless Chromium, continued: exact highlights after emoji, each tab's own result, busy and
cancel, background CSV jobs (progress, partial rows, stored download, reload), the entity view (scores, type
toggles, score slider, right-to-left text, long texts, the sortable table, the character limit) and the API docs.

A failing test saves ``test-artifacts/failed-<test>.png`` (see ``open_page``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_helpers import GazetteerPredictor, page_server, running_server, write_csv
from test_browser import CHROMIUM, browser, marks, open_page, read_download, screenshot, table_rows  # noqa: F401

from nerforge.serving import ServeSettings, create_app

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")

SCORES = {"Paris": 0.42, "Berlin": 0.55, "Bob": 0.97}


class Site:
    def __init__(self, api: str, pages: str, predictor: GazetteerPredictor) -> None:
        self.api, self.pages, self.predictor = api, pages, predictor


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """A slow model (40 ms a call, 4 texts a call) with varied scores; a model failure on texts with 💥, 1.5 s more
    on texts with ⏳."""
    predictor = GazetteerPredictor(delay_s=0.04, scores=SCORES, fail_marker="💥", slow_marker="⏳")
    settings = ServeSettings(allow_private_urls=True, batch_max_texts=4, batch_max_wait_ms=0, max_text_chars=3000)
    with page_server() as pages, running_server(create_app(predictor, settings)) as api:
        yield Site(api, pages, predictor)


@pytest.fixture
def page(browser, site: Site, request: pytest.FixtureRequest) -> Iterator[object]:  # noqa: F811 - the fixture
    yield from open_page(browser, site.api, request)


def run_text(page, text: str) -> None:
    page.click("#tab-text")
    page.fill("#text-input", text)
    page.click("#text-run")
    page.locator("#status.ok").wait_for()


def js(page, expression: str, selector: str = "body"):
    """Evaluate ``expression`` with ``e`` bound to the first element matching ``selector`` (the CSP allows no
    eval, but Playwright's element evaluation runs in its own world)."""
    return page.eval_on_selector(selector, f"e => {expression}")


def test_page_highlights_exactly_after_emoji_in_every_tab(page, site: Site, tmp_path: Path) -> None:
    text = "🎉🎉 Joe met Alice Smith in Paris 👋🏽 with Bob from Acme Corp."
    run_text(page, text)
    assert marks(page) == [("Alice Smith", "PER"), ("Paris", "LOC"), ("Bob", "PER"), ("Acme Corp", "ORG")]
    assert page.inner_text("#highlighted").startswith("🎉🎉 Joe met Alice Smith")
    source = write_csv(tmp_path / "emoji.csv", [["1", "🎉🎉 Bob visited Berlin 🇩🇪."]])
    page.click("#tab-csv")
    page.set_input_files("#csv-input", str(source))
    page.click("#csv-run")
    page.locator("#status.ok").wait_for()
    assert marks(page) == [("Bob", "PER"), ("Berlin", "LOC")]
    page.click("#tab-url")
    page.fill("#url-input", f"{site.pages}/emoji.txt")
    page.click("#url-run")
    page.locator("#status.ok").wait_for()
    assert marks(page) == [("Bob", "PER"), ("Alice Smith", "PER"), ("Paris", "LOC")]
    screenshot(page, "page-emoji.png")


def test_page_each_tab_keeps_its_own_result_and_errors_clear_it(page, site: Site) -> None:
    run_text(page, "Bob went to Berlin.")
    assert marks(page) == [("Bob", "PER"), ("Berlin", "LOC")]
    page.click("#tab-url")
    assert page.is_hidden("#results") and page.inner_text("#status") == ""  # no result from another tab
    page.fill("#url-input", "ftp://example.org/file")
    page.click("#url-run")
    page.locator("#status.error").wait_for()
    assert "only http and https" in page.inner_text("#status") and page.is_hidden("#results")
    page.click("#tab-text")
    assert marks(page) == [("Bob", "PER"), ("Berlin", "LOC")] and "2 entities found" in page.inner_text("#status")
    # A failing run in the same tab clears the old result and its download.
    page.fill("#text-input", "Bob 💥 Paris")
    page.click("#text-run")
    page.locator("#status.error").wait_for()
    assert "the model failed on this request" in page.inner_text("#status")
    assert page.is_hidden("#results") and page.is_hidden("#results-download")


def test_page_busy_dims_old_result_and_cancel_stops(page, site: Site, tmp_path: Path) -> None:
    run_text(page, "Bob went to Berlin.")
    # A CSV job of 400 rows takes ~4 s: busy with elapsed time, Cancel works, the partial rows stay.
    source = write_csv(tmp_path / "big.csv", [[str(i), "Bob met Alice Smith in Paris."] for i in range(400)])
    page.click("#tab-csv")
    page.set_input_files("#csv-input", str(source))
    page.click("#csv-run")
    page.locator("#busy").wait_for(state="visible")
    assert page.is_disabled("#csv-run")
    page.locator("#busy-text", has_text=" s").wait_for()
    page.locator("#highlighted .block").first.wait_for()
    done_before = int(page.eval_on_selector("#progress-bar", "e => e.value"))
    page.click("#cancel")
    page.locator("#status", has_text="Cancelled.").wait_for()
    assert page.is_hidden("#busy") and not page.is_disabled("#csv-run")
    shown = page.locator("#highlighted .block").count()
    assert 0 < shown <= 200 and done_before < 400
    time.sleep(0.5)
    assert page.locator("#highlighted .block").count() == shown  # nothing more arrives after Cancel
    # While a text run works, the tab's previous result is dimmed and its download disabled; then replaced.
    page.click("#tab-text")
    assert marks(page) == [("Bob", "PER"), ("Berlin", "LOC")]
    page.fill("#text-input", "⏳ Paris")
    page.click("#text-run")
    page.locator("#results.stale").wait_for()
    assert page.is_disabled("#results-download") and page.is_visible("#busy") and page.is_disabled("#text-run")
    page.locator("#status.ok").wait_for()
    assert marks(page) == [("Paris", "LOC")] and page.locator("#results.stale").count() == 0
    # Cancel a text run: busy gone, the dimmed result cleared.
    page.fill("#text-input", "⏳ Bob")
    page.click("#text-run")
    page.locator("#busy").wait_for(state="visible")
    page.click("#cancel")
    assert page.inner_text("#status") == "Cancelled." and page.is_hidden("#results") and page.is_hidden("#busy")


def test_page_a_csv_job_finishing_later_does_not_replace_the_text_result(page, site: Site, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "rows.csv", [[str(i), "Acme Corp hired Bob."] for i in range(240)])
    page.click("#tab-csv")
    page.set_input_files("#csv-input", str(source))
    page.click("#csv-run")
    page.locator("#progress-text", has_text="of 240 rows").wait_for()
    run_text(page, "Alice Smith is in Paris.")
    started = time.monotonic()
    while (
        time.monotonic() - started < 20
        and len(site.predictor.calls)
        and "done" not in page.evaluate("() => localStorage.getItem('nerforge.csvJob') === null ? 'done' : 'running'")
    ):
        time.sleep(0.2)
    time.sleep(0.6)  # a poll after the job ended has been handled
    assert page.get_attribute("#tab-text", "aria-selected") == "true"
    assert marks(page) == [("Alice Smith", "PER"), ("Paris", "LOC")] and "2 entities found" in page.inner_text(
        "#status"
    )
    page.click("#tab-csv")
    assert page.locator("#highlighted .block").count() == 200 and "480 entities found" in page.inner_text("#status")
    page.click("#tab-text")
    assert marks(page) == [("Alice Smith", "PER"), ("Paris", "LOC")]


def test_page_csv_job_progress_partial_rows_reload_and_stored_download(page, site: Site, tmp_path: Path) -> None:
    rows = [[str(i), f"Row {i}: Bob met Alice Smith in Paris."] for i in range(600)]
    source = write_csv(tmp_path / "notes.csv", rows)
    page.click("#tab-csv")
    page.set_input_files("#csv-input", str(source))
    page.click("#csv-run")
    page.locator("#progress-text", has_text="of 600 rows").wait_for()
    page.locator("#highlighted .block").first.wait_for()
    assert page.locator("#status.busy", has_text="More rows are on their way").count() == 1
    screenshot(page, "page-csv-progress.png")
    # A reload while the job runs picks it up again, on the CSV tab.
    page.reload()
    page.locator("#progress-text", has_text="done in").wait_for(timeout=30_000)
    assert page.get_attribute("#tab-csv", "aria-selected") == "true"
    assert "1800 entities found (3 distinct)" in page.inner_text("#status")
    assert page.locator("#highlighted .block").count() == 200
    assert "Showing 200 of 600 rows" in page.inner_text("#highlighted")
    calls = len(site.predictor.calls)
    with page.expect_download() as info:
        page.click("#csv-download")
    assert info.value.suggested_filename == "notes.entities.csv"
    got = read_download(info.value)
    assert len(got) == 601 and got[0] == ["id", "text", "entities"]
    assert len(site.predictor.calls) == calls  # the download did not run the model again
    screenshot(page, "page-csv-done.png")


def test_page_entity_view_scores_toggles_slider_and_table(page) -> None:
    run_text(page, "Bob met Alice Smith in Paris, then Bob flew to Berlin for Acme Corp.")
    mark = page.locator("#highlighted mark.entity").first
    assert mark.get_attribute("tabindex") == "0" and mark.get_attribute("aria-label") == "Bob: PER, score 0.97"
    score = page.locator("#highlighted mark.entity .entity-score").first
    assert score.is_hidden()
    mark.focus()
    assert score.is_visible() and score.inner_text() == "0.97"  # on focus, no hover needed
    page.check("#show-scores")
    assert page.locator("#highlighted .entity-score:visible").count() == 6
    # Sortable table with the mean score.
    assert table_rows(page)[0] == ["Bob", "PER", "2", "0.97"]
    page.click("#distinct th button[data-sort='mean']")
    assert [r[0] for r in table_rows(page)] == ["Bob", "Acme Corp", "Alice Smith", "Berlin", "Paris"]  # ties: by name
    assert page.get_attribute("#distinct th:nth-child(4)", "aria-sort") == "descending"
    page.click("#distinct th button[data-sort='mean']")
    assert (
        table_rows(page)[0][0] == "Paris"
        and page.get_attribute("#distinct th:nth-child(4)", "aria-sort") == "ascending"
    )
    # Type toggles from the legend.
    page.click("#legend button[data-label='PER']")
    assert page.get_attribute("#legend button[data-label='PER']", "aria-pressed") == "false"
    assert page.locator("#highlighted mark.entity.off").count() == 3
    assert {r[1] for r in table_rows(page)} == {"LOC", "ORG"}
    assert "6 entities found; 3 shown" in page.inner_text("#status")
    page.click("#legend button[data-label='PER']")
    # The confidence slider: 0.5 hides Paris (0.42), keeps Berlin (0.55).
    page.fill("#min-score", "0.5")
    assert page.inner_text("#min-score-value") == "0.50"
    off = page.eval_on_selector_all("#highlighted mark.entity.off", "ms => ms.map(m => m.firstChild.textContent)")
    assert off == ["Paris"] and "Paris" not in [r[0] for r in table_rows(page)]
    screenshot(page, "page-entity-view.png")


def test_page_right_to_left_and_long_texts(page) -> None:
    run_text(page, "التقى Bob في Paris")
    assert js(page, "getComputedStyle(e).direction", "#highlighted .text") == "rtl"
    assert page.get_attribute("#text-input", "dir") == "auto"
    assert marks(page) == [("Bob", "PER"), ("Paris", "LOC")]
    run_text(page, "Bob lives in Paris. " * 120)  # 2,400 characters: collapsed, with a button to open it
    block = page.locator("#highlighted .text")
    assert "collapsed" in block.get_attribute("class")
    height = js(page, "e.getBoundingClientRect().height", "#highlighted .text")
    page.click("#highlighted button.expand")
    assert page.get_attribute("#highlighted button.expand", "aria-expanded") == "true"
    assert js(page, "e.getBoundingClientRect().height", "#highlighted .text") > 3 * height
    screenshot(page, "page-long-text.png")


def test_page_counter_flags_the_limit(page) -> None:
    page.fill("#text-input", "é" * 2999 + "🎉")  # 3,000 code points: at the limit (the emoji counts once)
    assert page.inner_text("#text-count") == "3000 / 3000 characters" and not page.is_disabled("#text-run")
    page.fill("#text-input", "é" * 3001)
    assert "over the limit" in page.inner_text("#text-count")
    assert js(page, "getComputedStyle(e).color", "#text-count") == "rgb(180, 35, 24)"
    assert page.is_disabled("#text-run") and page.get_attribute("#text-input", "aria-invalid") == "true"


def test_page_favicon_and_api_docs_render_offline(page, site: Site) -> None:
    assert page.eval_on_selector("link[rel=icon]", "e => e.href").endswith("/favicon.ico")
    page.click("a[href='/docs']")
    page.locator(".opblock-summary-path", has_text="/v1/jobs").first.wait_for(timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "es => es.map(e => e.textContent.trim())")
    assert "/v1/entities" in paths and "/v1/entities/url" in paths
    page.locator(".opblock-summary-path", has_text="/v1/entities/url").first.click()
    page.locator(".opblock-body pre", has_text="https://example.org/news/article.html").first.wait_for()
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors
    screenshot(page, "page-docs.png")
