"""The serving API over a real uvicorn server on 127.0.0.1 (a thread of this process, on a free port).

Most tests use a deterministic gazetteer "model"; ``test_api_real_tiny_model_*`` serve a real (untrained) tiny
token-classification model through :func:`nerforge.serving.load_predictor`. URL tests fetch pages from a local
http.server on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serving_helpers import (
    FirstHopTrustedFetcher,
    GazetteerPredictor,
    PageHandler,
    build_tiny_model,
    page_server,
    running_server,
)

from nerforge.prediction.urlfetch import FetchPolicy, UrlFetcher
from nerforge.serving import ServeSettings, create_app, load_predictor

SMALL = ServeSettings(
    max_body_bytes=200_000,
    max_text_chars=2_000,
    max_texts=8,
    max_csv_rows=50,
    batch_max_wait_ms=20,
    allow_private_urls=True,
    fetch_max_bytes=500_000,
    fetch_timeout_s=1.0,
)


@dataclass
class Api:
    url: str
    app: object
    predictor: object

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    with page_server() as url:
        yield url


@pytest.fixture(autouse=True)
def _clear_page_log() -> None:
    PageHandler.requested.clear()
    PageHandler.hosts.clear()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    """Small limits, private URLs allowed (to reach the local page server), a model that takes 30 ms a call."""
    predictor = GazetteerPredictor(delay_s=0.03)
    app = create_app(predictor, SMALL)
    with running_server(app) as url:
        yield Api(url, app, predictor)


@pytest.fixture(scope="module")
def strict_api() -> Iterator[Api]:
    """Default settings: private URLs refused."""
    predictor = GazetteerPredictor()
    app = create_app(predictor)
    with running_server(app) as url:
        yield Api(url, app, predictor)


def spans(entities: list[dict]) -> list[tuple[str, str, int, int]]:
    return [(e["text"], e["label"], e["start"], e["end"]) for e in entities]


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "message"} and body["message"]
    return body


# ---- text ---------------------------------------------------------------------------------------------------


def test_api_text(api: Api) -> None:
    text = "Alice Smith met Bob in Paris."
    response = api.post("/v1/entities", json={"text": text})
    assert response.status_code == 200
    entities = response.json()["entities"]
    assert spans(entities) == [("Alice Smith", "PER", 0, 11), ("Bob", "PER", 16, 19), ("Paris", "LOC", 23, 28)]
    assert all(text[e["start"] : e["end"]] == e["text"] and e["score"] == 0.9 for e in entities)


def test_api_texts_keep_order(api: Api) -> None:
    texts = ["Bob in Berlin", "", "nothing here", "Acme Corp in Paris"]
    response = api.post("/v1/entities", json={"texts": texts})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [spans(r["entities"]) for r in results] == [
        [("Bob", "PER", 0, 3), ("Berlin", "LOC", 7, 13)],
        [],
        [],
        [("Acme Corp", "ORG", 0, 9), ("Paris", "LOC", 13, 18)],
    ]
    assert api.post("/v1/entities", json={"texts": []}).json() == {"results": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'the body has none of the fields it needs; it must be {"text": "..."} or {"texts"'),
        ({"text": "a", "texts": ["b"]}, 'the body has both "text" and "texts"; send one of them'),
        ({"text": 3}, '"text" must be a string, got a number'),
        ({"texts": "x"}, '"texts" must be a list of strings, got a string'),
        ({"texts": ["ok", 5]}, '"texts"[1] must be a string, got a number'),
        ({"texts": ["ok", None]}, '"texts"[1] must be a string, got null'),
        ({"text": "a", "extra": 1}, 'unknown field "extra"; the body must be {"text": "..."} or {"texts"'),
        ([], 'the body must be a JSON object, {"text": "..."} or {"texts": ["...", ...]}; got a list'),
        ("hello", "the body must be a JSON object"),
    ],
)
def test_api_text_wrong_shape_is_422_naming_the_field(api: Api, body: object, message: str) -> None:
    error = error_of(api.post("/v1/entities", json=body), 422)
    assert error["error"] == "invalid_request"
    assert error["message"].startswith(message), error["message"]
    assert "TextRequest" not in error["message"]


def test_api_text_invalid_json_is_400_and_bad_unicode_422(api: Api) -> None:
    headers = {"content-type": "application/json"}
    error = error_of(api.post("/v1/entities", content=b"{not json", headers=headers), 400)
    assert error["error"] == "invalid_json" and error["message"].startswith(
        "the body is not valid JSON (at character 1)"
    )
    empty = error_of(api.post("/v1/entities", content=b"", headers=headers), 422)
    assert empty["message"].startswith("the body is empty; it must be")
    url = error_of(api.post("/v1/entities/url", json={"url": ["x"]}), 422)
    assert url["message"] == '"url" must be a string, got a list'
    bad = api.post("/v1/entities", content=b'{"text": "a \\ud800 b"}', headers=headers)
    assert error_of(bad, 422)["error"] == "invalid_text"


def test_api_limits_are_413(api: Api) -> None:
    too_long = error_of(api.post("/v1/entities", json={"text": "x" * 2_001}), 413)
    assert too_long["error"] == "text_too_long" and "limit is 2000" in too_long["message"]
    too_many = error_of(api.post("/v1/entities", json={"texts": ["a"] * 9}), 413)
    assert too_many["error"] == "too_many_texts" and "limit is 8" in too_many["message"]
    declared = error_of(api.post("/v1/entities", json={"texts": ["x" * 1_000] * 250}), 413)
    assert declared["error"] == "body_too_large"


def test_api_body_limit_without_content_length(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(21):
            yield b"y" * 10_000
        yield b'"}'

    response = api.post("/v1/entities", content=chunks(), headers={"content-type": "application/json"})
    assert error_of(response, 413)["error"] == "body_too_large"


# ---- concurrency and batching -------------------------------------------------------------------------------


def test_api_concurrent_requests_are_batched(api: Api) -> None:
    batcher = api.app.state.batcher  # type: ignore[attr-defined]
    before = batcher.stats.batches
    n = 16
    barrier = threading.Barrier(n)

    def one(i: int) -> tuple[int, list]:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            r = client.post(api.url + "/v1/entities", json={"text": f"Request {i}: Bob flew from Paris to Berlin."})
            assert r.status_code == 200, r.text
            return i, r.json()["entities"]

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(one, range(n)))
    for i, entities in answers:
        offset = len(f"Request {i}: ")
        assert spans(entities) == [
            ("Bob", "PER", offset, offset + 3),
            ("Paris", "LOC", offset + 14, offset + 19),
            ("Berlin", "LOC", offset + 23, offset + 29),
        ]
    assert batcher.stats.batches - before < n  # fewer model calls than requests
    assert batcher.stats.largest_batch_requests > 1
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["batching"]["largest_batch_requests"] > 1


# ---- CSV ----------------------------------------------------------------------------------------------------

CSV_IN = 'id,text\n1,Alice Smith lives in Paris\n2,"=HYPERLINK(""http://x"",""Bob"")"\n3,\n4,"Acme Corp, Berlin"\n'


def test_api_csv_upload_download(api: Api) -> None:
    response = api.post("/v1/entities/csv", files={"file": ("people.csv", ("\ufeff" + CSV_IN).encode(), "text/csv")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="people.entities.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["id", "text", "entities"] and len(rows) == 5
    assert rows[1][:2] == ["1", "Alice Smith lives in Paris"]
    assert spans(json.loads(rows[1][2])) == [("Alice Smith", "PER", 0, 11), ("Paris", "LOC", 21, 26)]
    assert rows[2][1].startswith("'=HYPERLINK")  # a formula cell is neutralised
    # The offsets slice the cell as written, its escaping quote included.
    assert spans(json.loads(rows[2][2])) == [("Bob", "PER", 24, 27)] and rows[2][1][24:27] == "Bob"
    assert rows[3] == ["3", "", "[]"]
    assert [e["text"] for e in json.loads(rows[4][2])] == ["Acme Corp", "Berlin"]


def test_api_csv_distinct_and_json(api: Api) -> None:
    files = {"file": ("people.csv", CSV_IN.encode(), "text/csv")}
    distinct = api.post("/v1/entities/csv", params={"format": "distinct"}, files=files)
    assert distinct.status_code == 200
    rows = list(csv.reader(io.StringIO(distinct.text, newline="")))
    assert rows[0] == ["label", "text", "count"]
    assert sorted(rows[1:]) == sorted(
        [
            ["LOC", "Berlin", "1"],
            ["LOC", "Paris", "1"],
            ["ORG", "Acme Corp", "1"],
            ["PER", "Alice Smith", "1"],
            ["PER", "Bob", "1"],
        ]
    )
    as_json = api.post("/v1/entities/csv", params={"format": "json"}, files=files)
    assert as_json.status_code == 200
    body = as_json.json()
    assert body["columns"] == ["id", "text"] and [r["row"] for r in body["rows"]] == [1, 2, 3, 4]
    assert {(d["text"], d["count"]) for d in body["distinct"]} >= {("Paris", 1), ("Bob", 1)}


@pytest.mark.parametrize(
    ("data", "status", "code", "message"),
    [
        (b"id,body\n1,Bob\n", 422, "invalid_csv", "columns found: 'id', 'body'"),
        (b"text\n\xff\xfe\x00", 422, "invalid_csv", "not UTF-8"),
        (b"", 422, "invalid_csv", "empty"),
        (b"text\n" + b"Bob\n" * 51, 413, "too_many_rows", "more than 50 data rows"),
        (b"text\n" + b"x" * 2_001 + b"\n", 413, "text_too_long", "row 1 has 2001 characters"),
    ],
)
def test_api_csv_errors(api: Api, data: bytes, status: int, code: str, message: str) -> None:
    error = error_of(api.post("/v1/entities/csv", files={"file": ("in.csv", data, "text/csv")}), status)
    assert error["error"] == code and message in error["message"]


def test_api_csv_needs_a_file(api: Api) -> None:
    assert error_of(api.post("/v1/entities/csv", data={"file": "not a file"}), 422)["error"] == "invalid_request"
    assert error_of(api.post("/v1/entities/csv", json={"text": "x"}), 422)["error"] == "invalid_request"


# ---- URL ----------------------------------------------------------------------------------------------------


def test_api_url_article(api: Api, pages: str) -> None:
    response = api.post("/v1/entities/url", json={"url": f"{pages}/article.html"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == f"{pages}/article.html" and body["content_type"] == "text/html"
    assert body["truncated"] is False and body["title"]
    assert "Alice Smith travelled to Paris" in body["text"] and "Copyright" not in body["text"]
    found = {(e["text"], e["label"]) for e in body["entities"]}
    assert found == {("Alice Smith", "PER"), ("Paris", "LOC"), ("Bob", "PER"), ("Acme Corp", "ORG"), ("Berlin", "LOC")}
    assert all(body["text"][e["start"] : e["end"]] == e["text"] for e in body["entities"])


def test_api_url_plain_text(api: Api, pages: str) -> None:
    body = api.post("/v1/entities/url", json={"url": f"{pages}/plain.txt"}).json()
    assert body["text"] == "Bob met Alice Smith in Berlin." and body["title"] is None
    assert spans(body["entities"]) == [("Bob", "PER", 0, 3), ("Alice Smith", "PER", 8, 19), ("Berlin", "LOC", 23, 29)]


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/image.png", 422, "url_unusable", "content type: image/png"),
        ("/missing", 422, "url_unusable", "HTTP 404"),
        ("/big.txt", 422, "url_unusable", "larger than the limit of 500000 bytes"),
        ("/slow", 504, "fetch_timeout", "longer than 1 s"),
    ],
)
def test_api_url_unusable_pages(api: Api, pages: str, path: str, status: int, code: str, message: str) -> None:
    error = error_of(api.post("/v1/entities/url", json={"url": pages + path}), status)
    assert error["error"] == code and message in error["message"]


def test_api_url_metadata_refused_even_when_private_allowed(api: Api) -> None:
    error = error_of(api.post("/v1/entities/url", json={"url": "http://169.254.169.254/latest/meta-data/"}), 422)
    assert error["error"] == "url_refused" and "metadata" in error["message"]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{pages}/article.html", "loopback"),
        ("http://localhost:{port}/article.html", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]:{port}/", "loopback"),
        ("ftp://127.0.0.1/", "only http and https"),
    ],
)
def test_api_url_private_refused_by_default(strict_api: Api, pages: str, template: str, reason: str) -> None:
    url = template.format(pages=pages, port=pages.rsplit(":", 1)[1])
    error = error_of(strict_api.post("/v1/entities/url", json={"url": url}), 422)
    assert error["error"] == "url_refused" and reason in error["message"]
    assert PageHandler.requested == []  # refused before any connection


@pytest.fixture(scope="module")
def first_hop_api() -> Iterator[Api]:
    """Default rules, except that the URL asked for may be private: only redirect targets meet the usual check."""
    predictor = GazetteerPredictor()
    app = create_app(predictor, ServeSettings(), fetcher=FirstHopTrustedFetcher(FetchPolicy()))
    with running_server(app) as url:
        yield Api(url, app, predictor)


def test_api_url_redirect_to_loopback_refused(first_hop_api: Api, pages: str) -> None:
    # The first hop (the local page server) is trusted and fetched; its redirect to loopback must be refused.
    port = pages.rsplit(":", 1)[1]
    for target in (f"http://127.0.0.1:{port}/article.html", f"http://localhost:{port}/plain.txt"):
        PageHandler.requested.clear()
        response = first_hop_api.post("/v1/entities/url", json={"url": f"{pages}/redirect?to={target}"})
        error = error_of(response, 422)
        assert error["error"] == "url_refused" and "redirect target" in error["message"]
        assert "loopback" in error["message"]
        assert PageHandler.requested == ["/redirect"]  # the target was never requested
    # Control: without the redirect the same page is fetched, so the refusal came from the redirect check.
    assert first_hop_api.post("/v1/entities/url", json={"url": f"{pages}/article.html"}).status_code == 200


def test_api_url_connects_to_the_checked_address(pages: str) -> None:
    """A real socket: the host name is resolved once (here by a fixed table), the connection goes to that address,
    the name travels in the Host header, and the peer address of the connection is checked against it."""
    port = pages.rsplit(":", 1)[1]
    resolved: list[str] = []

    def resolver(host: str, port_: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    fetcher = UrlFetcher(FetchPolicy(allow_private=True), resolver=resolver)
    app = create_app(GazetteerPredictor(), ServeSettings(allow_private_urls=True), fetcher=fetcher)
    with running_server(app) as url:
        response = httpx.post(
            url + "/v1/entities/url", json={"url": f"http://news.invalid:{port}/plain.txt"}, timeout=30
        )
    assert response.status_code == 200, response.text
    assert response.json()["url"] == f"http://news.invalid:{port}/plain.txt"
    assert resolved == ["news.invalid"] and PageHandler.hosts == [f"news.invalid:{port}"]


def test_api_url_invalid_bodies(strict_api: Api) -> None:
    for body in ({"url": ""}, {"url": "not a url"}, {"url": "http://"}, {"url": 5}, {}):
        assert strict_api.post("/v1/entities/url", json=body).status_code == 422


# ---- model, health, page, errors ----------------------------------------------------------------------------


def test_api_model_info_and_health(api: Api) -> None:
    info = api.get("/v1/model").json()
    assert info["labels"] == ["LOC", "ORG", "PER"] and info["tags"][0] == "O"
    assert info["metrics"] == {"f1": 1.0, "nan_metric": None}  # NaN is not JSON: reported as null
    assert info["version"] and info["limits"]["max_texts"] == 8 and info["limits"]["allow_private_urls"] is True
    health = api.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_api_page_and_spec(api: Api) -> None:
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css"):
        assert api.get(asset).status_code == 200
    spec = api.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz",
        "/v1/health",
        "/v1/model",
        "/v1/entities",
        "/v1/entities/csv",
        "/v1/entities/url",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/rows",
        "/v1/jobs/{job_id}/download",
    }
    assert error_of(api.get("/nowhere"), 404)["error"] == "http_404"
    assert error_of(api.get("/v1/entities"), 405)["error"] == "http_405"


def test_api_request_time_limit_is_504() -> None:
    predictor = GazetteerPredictor(delay_s=1.5)
    app = create_app(predictor, ServeSettings(request_timeout_s=0.3))
    with running_server(app) as url:
        response = httpx.post(url + "/v1/entities", json={"text": "Bob"}, timeout=10)
        error = error_of(response, 504)
        assert error["error"] == "timeout" and "0.3 s" in error["message"]


# ---- a real (tiny, untrained) model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_api(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    model_dir = build_tiny_model(tiny_encoder, tmp_path_factory.mktemp("served-model"))
    predictor = load_predictor(model_dir, batch_size=8)
    app = create_app(predictor, ServeSettings(batch_max_wait_ms=20))
    with running_server(app) as url:
        yield Api(url, app, predictor)


def test_api_real_tiny_model_text_csv_and_info(real_api: Api) -> None:
    info = real_api.get("/v1/model").json()
    assert info["labels"] == ["LOC", "ORG", "PER"] and info["metrics"] == {"f1": 0.5} and info["backend"] == "torch"
    text = "Alice Smith flew from Paris to Berlin on Monday."
    entities = real_api.post("/v1/entities", json={"text": text}).json()["entities"]
    assert entities, "a random head over random weights tags at least something in 10 words"
    for e in entities:
        assert text[e["start"] : e["end"]] == e["text"] and e["label"] in info["labels"] and 0 <= e["score"] <= 1
    response = real_api.post("/v1/entities/csv", files={"file": ("t.csv", f"text\n{text}\n\n".encode(), "text/csv")})
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["text", "entities"] and json.loads(rows[1][1]) == entities


def test_api_real_tiny_model_batched_equals_alone(real_api: Api) -> None:
    texts = [f"Text {i}: Bob Jones of Acme Corp visited Berlin and Paris {'again ' * i}." for i in range(8)]
    alone = [real_api.predictor.predict([t])[0] for t in texts]  # type: ignore[attr-defined]
    barrier = threading.Barrier(len(texts))

    def one(text: str) -> list[dict]:
        barrier.wait()
        return httpx.post(real_api.url + "/v1/entities", json={"text": text}, timeout=60).json()["entities"]

    with ThreadPoolExecutor(len(texts)) as pool:
        together = list(pool.map(one, texts))
    for served, direct in zip(together, alone, strict=True):
        assert spans(served) == [(e.text, e.label, e.start, e.end) for e in direct]
        assert [s["score"] for s in served] == pytest.approx([e.score for e in direct], abs=1e-4)
    assert real_api.app.state.batcher.stats.largest_batch_requests > 1  # type: ignore[attr-defined]


# ---- model failures and the command line --------------------------------------------------------------------


class _Fragile(GazetteerPredictor):
    """Fails on any batch holding a text with "BOOM" (a model bug that only some inputs trigger)."""

    def predict(self, texts: list[str]) -> list[list]:
        if any("BOOM" in t for t in texts):
            raise RuntimeError("kaboom")
        return super().predict(texts)


def test_api_model_failure_fails_only_its_own_request() -> None:
    predictor = _Fragile(delay_s=0.05)
    app = create_app(predictor, ServeSettings(batch_max_wait_ms=50))
    texts = ["Bob in Paris", "BOOM", "Alice Smith in Berlin", "Acme Corp"]
    barrier = threading.Barrier(len(texts))
    with running_server(app) as url:

        def one(text: str) -> httpx.Response:
            barrier.wait()
            return httpx.post(url + "/v1/entities", json={"text": text}, timeout=30)

        with ThreadPoolExecutor(len(texts)) as pool:
            answers = dict(zip(texts, pool.map(one, texts), strict=True))
        assert app.state.batcher.stats.largest_batch_requests > 1  # the bad text did share a batch
    assert error_of(answers["BOOM"], 500)["error"] == "prediction_failed"
    for text in ("Bob in Paris", "Alice Smith in Berlin", "Acme Corp"):
        assert answers[text].status_code == 200 and answers[text].json()["entities"]


def test_api_serve_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nerforge.cli import main

    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "missing: model directory not found" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 2
    assert "nerforge.json is missing" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--backend", "tensorflow"]) == 2
    assert "unknown backend 'tensorflow'" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--max-texts", "0"]) == 2
    assert "max_texts must be a positive number" in capsys.readouterr().err
