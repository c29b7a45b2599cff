"""URL fetching rules, without any network: resolution is replaced, HTTP goes to an in-memory transport."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import re
import socket

import httpx
import pytest

from nerforge.prediction.urlfetch import (
    FetchPolicy,
    UrlFetcher,
    UrlFetchError,
    UrlFetchTimeoutError,
    UrlRefusedError,
    address_problem,
    extract_main_text,
    parse_url,
)

PUBLIC_V4 = "93.184.216.34"
HTML = (
    b"<html><head><title>A page</title></head><body><article><p>Alice Smith met Bob in Paris on a long "
    b"and sunny Monday afternoon, then they walked along the river for an hour.</p></article></body></html>"
)


def run(coro):
    return asyncio.run(coro)


def table_resolver(table: dict[str, list[str]]):
    """A resolver from a fixed table; unknown names fail like a DNS miss."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def fetcher(handler, table: dict[str, list[str]], **policy) -> UrlFetcher:
    return UrlFetcher(FetchPolicy(**policy), resolver=table_resolver(table), transport=httpx.MockTransport(handler))


def html_page(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/html; charset=utf-8"}, content=HTML)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "private|reserved"),
        ("100.64.0.1", "not a public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
    ],
)
def test_urlfetch_address_refused(address: str, reason: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None and re.search(reason, problem)


@pytest.mark.parametrize("address", [PUBLIC_V4, "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_urlfetch_public_address_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_urlfetch_allow_private_still_refuses_metadata() -> None:
    assert address_problem(ipaddress.ip_address("127.0.0.1"), allow_private=True) is None
    assert address_problem(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    for metadata in ("169.254.169.254", "fd00:ec2::254"):
        assert "metadata" in address_problem(ipaddress.ip_address(metadata), allow_private=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("ftp://example.org/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("example.org/page", "only http and https"),
        ("http:///path", "no host"),
        ("http://user:secret@example.org/", "user name or password"),
        ("http://example.org/\nHost: evil", "control characters"),
        ("http://[::1/", "not a valid URL"),
        ("http://example.org/" + "a" * 3000, "longer than"),
    ],
)
def test_urlfetch_parse_refuses(url: str, message: str) -> None:
    with pytest.raises(UrlRefusedError, match=message):
        parse_url(url)


@pytest.mark.parametrize(
    ("url", "table"),
    [
        ("http://localhost/", {"localhost": ["127.0.0.1", "::1"]}),
        ("http://127.0.0.1:8080/", {"127.0.0.1": ["127.0.0.1"]}),
        ("http://10.0.0.1/", {"10.0.0.1": ["10.0.0.1"]}),
        ("http://169.254.169.254/latest/meta-data/", {"169.254.169.254": ["169.254.169.254"]}),
        ("http://[fd00:ec2::254]/", {"fd00:ec2::254": ["fd00:ec2::254"]}),
        ("http://mixed.example/", {"mixed.example": [PUBLIC_V4, "10.1.2.3"]}),  # every address must be public
        ("http://nowhere.example/", {}),
    ],
)
def test_urlfetch_check_refuses_before_connecting(url: str, table: dict[str, list[str]]) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return html_page(request)

    with pytest.raises(UrlRefusedError, match="not fetched|cannot resolve"):
        run(fetcher(handler, table).fetch(url))
    assert requests == []


def test_urlfetch_connects_to_the_checked_address_with_host_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return html_page(request)

    page = run(fetcher(handler, {"news.example": [PUBLIC_V4]}).fetch("http://news.example:8080/story?id=1"))
    (request,) = seen
    assert request.url.host == PUBLIC_V4 and request.url.port == 8080 and request.url.path == "/story"
    assert request.headers["host"] == "news.example:8080"
    assert page.url == "http://news.example:8080/story?id=1"
    assert page.title == "A page" and "Alice Smith met Bob in Paris" in page.text


def test_urlfetch_https_keeps_name_for_tls() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return html_page(request)

    run(fetcher(handler, {"secure.example": [PUBLIC_V4]}).fetch("https://secure.example/"))
    assert seen[0].url.host == PUBLIC_V4
    assert seen[0].extensions["sni_hostname"] == "secure.example"
    assert seen[0].headers["host"] == "secure.example"


def test_urlfetch_dns_rebinding_cannot_switch_address() -> None:
    """The name resolves once per hop; a second, different answer is never used for the connection."""
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return next(answers)

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return html_page(request)

    fetch = UrlFetcher(FetchPolicy(), resolver=resolver, transport=httpx.MockTransport(handler))
    run(fetch.fetch("http://rebind.example/"))
    assert resolved == ["rebind.example"] and seen == [PUBLIC_V4]


def test_urlfetch_redirect_target_is_checked_again() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://intranet.example/admin"})

    table = {"public.example": [PUBLIC_V4], "intranet.example": ["10.0.0.5"]}
    with pytest.raises(UrlRefusedError, match=r"redirect target 'intranet.example' resolves to 10\.0\.0\.5"):
        run(fetcher(handler, table).fetch("http://public.example/start"))
    assert seen == [f"http://{PUBLIC_V4}/start"]


def test_urlfetch_relative_redirect_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"location": "/new"})
        return html_page(request)

    page = run(fetcher(handler, {"site.example": [PUBLIC_V4]}).fetch("http://site.example/old"))
    assert page.url == "http://site.example/new"


def test_urlfetch_redirect_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.strip("/") or 0)
        return httpx.Response(302, headers={"location": f"/{n + 1}"})

    with pytest.raises(UrlFetchError, match="more than 5 redirects"):
        run(fetcher(handler, {"loop.example": [PUBLIC_V4]}).fetch("http://loop.example/0"))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, headers={"content-type": "image/png"}, content=b"\x89PNG"), "content type: image/png"),
        (httpx.Response(200, content=b"no type"), "content type: none"),
        (httpx.Response(404, headers={"content-type": "text/html"}, content=b"gone"), "HTTP 404"),
        (httpx.Response(302), "without a Location"),
    ],
)
def test_urlfetch_unusable_pages(response: httpx.Response, message: str) -> None:
    with pytest.raises(UrlFetchError, match=message):
        run(fetcher(lambda request: response, {"site.example": [PUBLIC_V4]}).fetch("http://site.example/"))


def _streamed(chunks: list[bytes], headers: dict[str, str]) -> httpx.Response:
    async def body():
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, headers=headers, content=body())


def test_urlfetch_unsupported_encoding() -> None:
    headers = {"content-type": "text/plain", "content-encoding": "br"}
    with pytest.raises(UrlFetchError, match="unsupported content encoding"):
        run(fetcher(lambda request: _streamed([b"x"], headers), {"b.example": [PUBLIC_V4]}).fetch("http://b.example/"))


def test_urlfetch_size_limit_streaming_without_length() -> None:
    handler = lambda request: _streamed([b"x" * 1000] * 50, {"content-type": "text/plain"})  # noqa: E731
    with pytest.raises(UrlFetchError, match="larger than the limit of 10000 bytes"):
        run(fetcher(handler, {"big.example": [PUBLIC_V4]}, max_bytes=10_000).fetch("http://big.example/"))


def test_urlfetch_size_limit_declared_length() -> None:
    handler = lambda request: httpx.Response(200, headers={"content-type": "text/plain"}, content=b"y" * 20_000)  # noqa: E731
    with pytest.raises(UrlFetchError, match="larger than the limit"):
        run(fetcher(handler, {"big.example": [PUBLIC_V4]}, max_bytes=10_000).fetch("http://big.example/"))


def test_urlfetch_size_limit_counts_decompressed_bytes() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    headers = {"content-type": "text/plain", "content-encoding": "gzip"}
    handler = lambda request: _streamed([bomb], headers)  # noqa: E731
    with pytest.raises(UrlFetchError, match="larger than the limit of 100000 bytes"):
        run(fetcher(handler, {"bomb.example": [PUBLIC_V4]}, max_bytes=100_000).fetch("http://bomb.example/"))


def test_urlfetch_gzip_page_decoded() -> None:
    headers = {"content-type": "text/plain; charset=utf-8", "content-encoding": "gzip"}
    handler = lambda request: _streamed([gzip.compress("Zoë lives in Köln.".encode())], headers)  # noqa: E731
    page = run(fetcher(handler, {"z.example": [PUBLIC_V4]}).fetch("http://z.example/"))
    assert page.text == "Zoë lives in Köln." and page.content_type == "text/plain" and page.title is None


def test_urlfetch_plain_text_charset() -> None:
    handler = lambda request: httpx.Response(  # noqa: E731
        200, headers={"content-type": "text/plain; charset=iso-8859-1"}, content="Café in Zürich".encode("latin-1")
    )
    page = run(fetcher(handler, {"p.example": [PUBLIC_V4]}).fetch("http://p.example/"))
    assert page.text == "Café in Zürich"


def test_urlfetch_time_limit() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return html_page(request)

    with pytest.raises(UrlFetchTimeoutError, match="longer than 0.2 s"):
        run(fetcher(slow, {"slow.example": [PUBLIC_V4]}, timeout_s=0.2).fetch("http://slow.example/"))


def test_urlfetch_extract_falls_back_to_plain_text() -> None:
    title, text = extract_main_text(b"<html><body><p>Tiny Bob.</p></body></html>")
    assert text == "Tiny Bob."
