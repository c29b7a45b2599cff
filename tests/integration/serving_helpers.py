"""Helpers for the serving tests: a deterministic fake model, a real uvicorn server in a thread, a page server.

Everything listens on 127.0.0.1 only, on a free port chosen by the OS.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from nerforge.prediction.urlfetch import UrlFetcher
from nerforge.serving.predictor import ModelInfo
from nerforge.types import Entity

GAZETTEER = {
    "Alice Smith": "PER",
    "Bob": "PER",
    "Paris": "LOC",
    "Berlin": "LOC",
    "Acme Corp": "ORG",
}


class GazetteerPredictor:
    """Tags every whole-word occurrence of a fixed phrase list; records the size of every ``predict`` call.

    Args:
        gazetteer: phrase -> label.
        delay_s: time each ``predict`` call sleeps (so concurrent requests pile up and get batched).
        scores: phrase -> score (0.9 for phrases not listed).
        fail_marker: a text containing it makes ``predict`` raise (a model failure).
        slow_marker: a text containing it makes ``predict`` take 1.5 s more (a run to watch while it works).
    """

    def __init__(
        self,
        gazetteer: dict[str, str] | None = None,
        *,
        delay_s: float = 0.0,
        scores: dict[str, float] | None = None,
        fail_marker: str | None = None,
        slow_marker: str | None = None,
    ) -> None:
        self.gazetteer = dict(gazetteer or GAZETTEER)
        self.delay_s = delay_s
        self.scores = dict(scores or {})
        self.fail_marker = fail_marker
        self.slow_marker = slow_marker
        self.calls: list[int] = []
        self._lock = threading.Lock()
        names = sorted(self.gazetteer, key=len, reverse=True)
        self._pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
        labels = sorted(set(self.gazetteer.values()))
        tags = ("O", *(f"{p}-{label}" for label in labels for p in "BI"))
        self._info = ModelInfo(
            name="gazetteer",
            tags=tags,
            metrics={"f1": 1.0, "nan_metric": float("nan")},
            backend="fake",
            base_model="none",
            model_version="test",
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def entities(self, text: str) -> list[Entity]:
        # Offsets in code points, as the API promises: Python's str indices are code points.
        return [
            Entity(
                text=m.group(0),
                label=self.gazetteer[m.group(0)],
                start=m.start(),
                end=m.end(),
                score=self.scores.get(m.group(0), 0.9),
            )
            for m in self._pattern.finditer(text)
        ]

    def predict(self, texts: list[str]) -> list[list[Entity]]:
        with self._lock:
            self.calls.append(len(texts))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.slow_marker and any(self.slow_marker in t for t in texts):
            time.sleep(1.5)
        if self.fail_marker and any(self.fail_marker in t for t in texts):
            raise RuntimeError("the model failed")
        return [self.entities(t) for t in texts]


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def running_server(app: object, *, start_timeout_s: float = 20.0) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on 127.0.0.1 in a thread; yields its base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


ARTICLE = """<!doctype html><html><head><title>Test article</title></head><body>
<nav>Home | News | Contact</nav>
<article><h1>Visit report</h1>
<p>Alice Smith travelled to Paris on Monday to meet Bob from Acme Corp. The meeting went on for hours and
covered plans for the coming year in some detail.</p>
<p>Afterwards they all took the train to Berlin, where the conference was held.</p>
</article><footer>Copyright nobody</footer></body></html>"""


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Pages for the URL tests. ``/redirect?to=URL`` answers 302 to ``URL``."""

    routes: dict[str, tuple[str, bytes]] = {
        "/article.html": ("text/html; charset=utf-8", ARTICLE.encode()),
        "/plain.txt": ("text/plain; charset=utf-8", b"Bob met Alice Smith in Berlin."),
        "/emoji.txt": ("text/plain; charset=utf-8", "🎉🎉 Bob met Alice Smith 👋🏽 in Paris.".encode()),
        "/image.png": ("image/png", b"\x89PNG\r\n\x1a\n"),
        "/big.txt": ("text/plain", b"Paris " * 200_000),
        "/slow": ("text/plain", b"Paris, eventually."),
    }

    requested: list[str] = []  # every path asked for, across instances (tests clear it)
    hosts: list[str] = []  # the Host header of each request

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path, _, query = self.path.partition("?")
        self.requested.append(path)
        self.hosts.append(self.headers.get("Host", ""))
        if path == "/slow":
            time.sleep(3)
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.removeprefix("to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path not in self.routes:
            self.send_error(404)
            return
        content_type, body = self.routes[path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def page_server(handler: type[http.server.BaseHTTPRequestHandler] = PageHandler) -> Iterator[str]:
    """An http.server on 127.0.0.1 serving ``handler``'s pages; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="page-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header or ["id", "text"])
        writer.writerows(rows)
    return path


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


class FirstHopTrustedFetcher(UrlFetcher):
    """Allows a private address for the URL asked for only, so a test page on 127.0.0.1 can be fetched while the
    default rules still apply to every redirect it answers with."""

    def allows_private(self, hop: int) -> bool:
        return hop == 0 or self.policy.allow_private


def build_tiny_model(encoder: Path, directory: Path, *, types: tuple[str, ...] = ("LOC", "ORG", "PER")) -> Path:
    """An untrained nerforge model directory (random head over ``encoder``): real model code, arbitrary tags."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from nerforge.model_dir import ModelMeta
    from nerforge.types import LabelSet

    labels = LabelSet.from_types(types)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels.tags), id2label=labels.id2label, label2id=labels.label2id
    )
    torch.nn.init.normal_(model.classifier.weight, std=2.0)  # the default head is near zero: make tags vary
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(directory)
    ModelMeta(tags=list(labels.tags), max_length=32, stride=8, base_model=str(encoder), metrics={"f1": 0.5}).save(
        directory
    )
    return directory


CHROMIUM = Path(__import__("os").environ.get("NERFORGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextlib.contextmanager
def chromium_page(url: str, *, width: int = 1100, height: int = 700) -> Iterator[object]:
    """A page of headless Chromium (Playwright) open on ``url``; the test skips without Chromium or Playwright."""
    import pytest

    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (install Debian's chromium or set NERFORGE_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            yield page
        finally:
            browser.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot in ``test-artifacts/`` (git-ignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def tagged_rows(page: Any, text: str) -> list[list[Any]]:
    """Tag ``text`` on the page's Text tab and read its rows of overlapping entities: each row's name (a layer, or
    outer/inner) and the texts of its entities."""
    page.fill("#text-input", text)
    page.click("#text-run")
    page.wait_for_selector("#highlighted .layer-row mark.entity")
    return page.eval_on_selector_all(
        "#highlighted .layer-row",
        """rows => rows.map(r => [
        r.querySelector('.layer-name').textContent,
        [...r.querySelectorAll('mark.entity')].map(m => m.firstChild.textContent)])""",
    )
