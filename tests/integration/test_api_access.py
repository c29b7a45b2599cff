"""Who may ask the server (Host names, cross-site posts, per-client concurrency), and the small things every web
server answers: HEAD, a favicon, offline API docs, error messages without errno codes."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from serving_helpers import GazetteerPredictor, running_server

from nerforge.prediction.urlfetch import plain_reason
from nerforge.serving import ServeSettings, create_app
from nerforge.serving.access import cross_site_problem, host_problem, split_host


@pytest.fixture(scope="module")
def url():
    with running_server(create_app(GazetteerPredictor(), ServeSettings(allowed_hosts=("nerforge.lan",)))) as base:
        yield base


def post_text(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url + "/v1/entities", json={"text": "Bob in Paris"}, headers=headers, timeout=10)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io"])
def test_api_unknown_host_names_are_refused(url: str, host: str) -> None:
    for answer in (httpx.get(url + "/", headers={"host": host}), post_text(url, host=host)):
        assert answer.status_code == 400 and answer.json()["error"] == "host_not_allowed"
        assert "--allowed-host" in answer.json()["message"]
        assert answer.headers["x-frame-options"] == "DENY"  # refusals carry the security headers too


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:1234", "LOCALHOST.", "[::1]:80", "10.1.2.3", "nerforge.lan"])
def test_api_ip_addresses_loopback_and_configured_names_are_answered(url: str, host: str) -> None:
    assert httpx.get(url + "/v1/model", headers={"host": host}).status_code == 200


def test_api_cross_site_posts_are_refused(url: str) -> None:
    port = url.rsplit(":", 1)[1]
    csv_file = {"file": ("a.csv", b"text\nBob\n", "text/csv")}
    evil = httpx.post(url + "/v1/entities/csv", files=csv_file, headers={"origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"] == "cross_site_refused"
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "null"},
        {"origin": f"http://127.0.0.1:{int(port) + 1}"},
    ):
        assert post_text(url, **headers).status_code == 403, headers
    # The page's own requests, and clients that are not browsers, go through.
    for headers in ({"origin": url, "sec-fetch-site": "same-origin"}, {"sec-fetch-site": "none"}, {}):
        assert post_text(url, **headers).status_code == 200, headers
    # Reading is not refused (the browser keeps the answer from the other site anyway).
    assert httpx.get(url + "/v1/model", headers={"origin": "http://evil.example"}).status_code == 200


def test_access_rules_as_functions() -> None:
    assert split_host("[::1]:8000") == ("::1", "8000") and split_host("Example.ORG") == ("example.org", "")
    assert host_problem("localhost:8000", ["localhost"]) is None and host_problem(None, ["localhost"]) is None
    assert host_problem("anything", ["*"]) is None and host_problem("a.b", ["localhost"]) is not None
    post = {"host": "localhost:8000"}
    assert cross_site_problem("POST", {**post, "origin": "http://localhost:8000"}) is None
    assert cross_site_problem("POST", {"host": "example.org", "origin": "https://example.org"}) is None
    assert cross_site_problem("POST", {"host": "example.org:443", "origin": "https://example.org"}) is None
    assert cross_site_problem("POST", {"host": "example.org:80", "origin": "https://example.org"}) is not None
    assert cross_site_problem("DELETE", {**post, "origin": "http://other:8000"}) is not None
    assert cross_site_problem("GET", {**post, "sec-fetch-site": "cross-site"}) is None


def test_api_per_client_concurrency_limit() -> None:
    app = create_app(GazetteerPredictor(delay_s=0.5), ServeSettings(max_concurrent_per_client=2, batch_max_texts=1))

    async def burst(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(client.post(base + "/v1/entities", json={"text": f"Bob {i}"}) for i in range(5))
            )

    with running_server(app) as base:
        answers = asyncio.run(burst(base))
        codes = sorted(a.status_code for a in answers)
        assert codes.count(200) >= 2 and codes.count(429) >= 1 and set(codes) <= {200, 429}, codes
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["retry-after"] == "1" and refused.json()["error"] == "too_many_requests"
        assert httpx.post(base + "/v1/entities", json={"text": "Bob"}).status_code == 200  # the count went down


def test_api_head_favicon_and_offline_docs(url: str) -> None:
    head = httpx.head(url + "/")
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/html") and head.content == b""
    icon = httpx.get(url + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content
    assert httpx.head(url + "/favicon.ico").status_code == 200
    docs = httpx.get(url + "/docs")
    assert docs.status_code == 200 and 'src="/docs/assets/swagger-ui-bundle.js"' in docs.text
    assert "cdn" not in docs.text.lower() and "http" not in docs.text.replace("http-equiv", "")
    assert "'unsafe-inline'" in docs.headers["content-security-policy"]
    assert "script-src 'self';" in docs.headers["content-security-policy"]  # never inline scripts
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/static/docs.js"):
        assert httpx.get(url + asset).status_code == 200, asset
    spec = httpx.get(url + "/openapi.json").json()
    example = spec["components"]["schemas"]["TextsRequest"]["examples"][0]
    assert list(example) == ["texts"] and post_text(url).status_code == 200


def test_plain_reasons_have_no_errno_codes() -> None:
    assert plain_reason(socket.gaierror(-2, "Name or service not known")) == "no such host name"
    wrapped = httpx.ConnectError("[Errno 111] Connection refused")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert plain_reason(wrapped) == "the connection was refused"
    assert plain_reason(httpx.ConnectError("[Errno 113] No route to host")) == "No route to host"


def test_api_url_errors_have_no_errno_codes() -> None:
    settings = ServeSettings(allow_private_urls=True, fetch_timeout_s=5)
    with running_server(create_app(GazetteerPredictor(), settings)) as base:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # nothing listens there now
        for target, words in (
            (f"http://127.0.0.1:{port}/", "the connection was refused"),
            ("http://no-such-host.invalid/", "no such host name"),
        ):
            answer = httpx.post(base + "/v1/entities/url", json={"url": target}, timeout=30)
            message = answer.json()["message"]
            assert answer.status_code == 422 and words in message and "Errno" not in message, message


def test_api_405_lists_every_method_of_the_path(url: str) -> None:
    answer = httpx.request("PUT", url + "/v1/jobs/some-id")
    assert answer.status_code == 405 and answer.headers["allow"] == "DELETE, GET"
    assert httpx.request("PUT", url + "/v1/jobs").headers["allow"] == "POST"


def test_api_uploads_without_a_file_and_json_sent_as_text_say_what_to_send(url: str) -> None:
    for path in ("/v1/jobs", "/v1/entities/csv"):
        answer = httpx.post(url + path, content=b"text\nBob\n", headers={"content-type": "text/csv"})
        assert answer.status_code == 422
        assert answer.json()["message"].startswith(
            'the body must be a multipart/form-data upload with the CSV file in the field "file"'
        )
    plain = httpx.post(url + "/v1/entities", content=b'{"text": "Bob"}', headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["message"] == (
        "send the body as JSON with Content-Type: application/json (got text/plain)"
    )


def test_serve_answers_for_the_name_it_was_started_under() -> None:
    from nerforge.serving.server import settings_for_host

    named = settings_for_host(ServeSettings(allowed_hosts=("other.lan",)), "ner.internal")
    assert named.allowed_hosts == ("other.lan", "ner.internal")
    assert settings_for_host(named, "ner.internal").allowed_hosts == named.allowed_hosts  # already there
    assert settings_for_host(ServeSettings(), "0.0.0.0").allowed_hosts == ()  # an address: nothing to add
    app = create_app(GazetteerPredictor(), named)
    assert app.state.settings.allowed_hosts == ("other.lan", "ner.internal")
