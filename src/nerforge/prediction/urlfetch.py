"""Fetch a web page for tagging without letting the server be used to reach what it should not.

The rules, for the first URL and again for every redirect (followed by hand, at most ``max_redirects``):

* only ``http`` and ``https``, no user name or password in the URL;
* the host name is resolved here, and *every* address it resolves to must be public: loopback, private,
  link-local, multicast, reserved, unspecified, shared (CGNAT) and other non-global addresses are refused
  (IPv4 addresses embedded in IPv6 ones are checked too) unless ``allow_private`` is set; cloud metadata
  addresses (``169.254.169.254``, ``fd00:ec2::254``, ...) are refused always;
* the connection goes to the address that was checked (the URL's host is replaced by that IP, with the name kept
  in the ``Host`` header and for TLS SNI and certificate checks), so a DNS answer that changes between the check
  and the connection (DNS rebinding) cannot redirect it; the peer address of the connection is checked again;
* proxies from the environment are ignored (they would connect elsewhere);
* the body is streamed and reading stops past ``max_bytes`` (decompression included); the whole fetch has one
  time limit; only ``text/html`` and ``text/plain`` are accepted.

The main text of HTML is extracted with trafilatura (falling back to the page's plain text); text/plain is used
as is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from nerforge.errors import UsageError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

ALLOWED_SCHEMES = ("http", "https")
ALLOWED_TYPES = ("text/html", "text/plain")
REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_URL_CHARS = 2048
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefusedError(UsageError):
    """A URL the server will not fetch: wrong scheme, unresolvable host, or a non-public address."""

    code = "E420"


class UrlFetchError(UsageError):
    """A URL that was fetched but gave nothing usable: an HTTP error, a wrong content type, a page too large."""

    code = "E421"


class UrlFetchTimeoutError(UrlFetchError):
    """A fetch that took longer than its time limit."""

    code = "E422"


@dataclass(frozen=True)
class FetchedPage:
    """The main text of a fetched page."""

    url: str
    content_type: str
    title: str | None
    text: str


class PageFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedPage: ...


@dataclass(frozen=True)
class FetchPolicy:
    allow_private: bool = False
    timeout_s: float = 15.0
    max_bytes: int = 3 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "nerforge-url-fetch/1"


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to (literal IPs resolve to themselves, without a DNS query)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why the server must not connect to ``ip`` (``None`` when it may)."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner, allow_private=allow_private)
            return f"{problem} (inside the IPv6 address)" if problem else None
    if allow_private:
        return None
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            name = kind.replace("_", "-")
            return f"{'an' if name[0] in 'aeiou' else 'a'} {name} address"
    if getattr(ip, "is_site_local", False):
        return "a site-local address"
    if not ip.is_global:
        return "not a public address"
    return None


def parse_url(raw: str) -> httpx.URL:
    """Parse and check a URL's form (not its addresses)."""
    text = raw.strip()
    if not text:
        raise UrlRefusedError("the URL is empty")
    if len(text) > MAX_URL_CHARS:
        raise UrlRefusedError(f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UrlRefusedError("the URL contains control characters")
    try:
        url = httpx.URL(text)
        scheme, host = url.scheme, url.host
        url.raw_host.decode("ascii")
        _ = url.port
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise UrlRefusedError(f"not a valid URL: {exc}") from None
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme or "none"
        raise UrlRefusedError(f"only http and https URLs can be fetched (scheme: {shown})")
    if not host:
        raise UrlRefusedError("the URL has no host name")
    if url.userinfo:
        raise UrlRefusedError("URLs with a user name or password are not fetched")
    return url


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    ip: IPAddress


@dataclass(frozen=True)
class _RawPage:
    url: str
    mime: str
    charset: str | None
    body: bytes


class _Inflater:
    """Bounded decompression of a ``Content-Encoding`` (so a small gzip cannot expand past the size limit)."""

    def __init__(self, encoding: str) -> None:
        self._z = None
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)
        elif encoding not in ("", "identity"):
            raise UrlFetchError(f"the page uses an unsupported content encoding ({encoding})")

    def feed(self, chunk: bytes, room: int) -> bytes:
        """Decoded bytes of ``chunk``; more than ``room`` means the page is too large."""
        if self._z is None:
            return chunk
        try:
            return self._z.decompress(chunk, room + 1)
        except zlib.error as exc:
            raise UrlFetchError(f"the page's compressed body is corrupt: {exc}") from None


_GAI_REASONS = {
    getattr(socket, "EAI_NONAME", -2): "no such host name",
    getattr(socket, "EAI_AGAIN", -3): "the name server did not answer (try again later)",
    getattr(socket, "EAI_FAIL", -4): "the name lookup failed",
    getattr(socket, "EAI_NODATA", -5): "the host name has no address",
}


def plain_reason(exc: BaseException) -> str:
    """Why a lookup or connection failed, in words, without ``[Errno -2]`` codes."""
    original, seen = exc, set()
    while exc is not None and id(exc) not in seen:  # httpx wraps the OSError that says what happened
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror):
            return _GAI_REASONS.get(exc.errno or 0, "the host name could not be looked up")
        if isinstance(exc, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(exc, ConnectionResetError):
            return "the connection was reset"
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(original)
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else (text or "the connection failed")


class UrlFetcher:
    """Fetches pages under a :class:`FetchPolicy`.

    Args:
        policy: limits and the private-address switch.
        resolver: ``(host, port) -> [ip, ...]``; tests replace it to avoid DNS.
        transport: an httpx transport, for tests; the default connects over the network.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._resolver = resolver
        self._transport = transport

    def allows_private(self, hop: int) -> bool:
        """Whether hop ``hop`` (0 = the URL asked for, 1.. = redirects) may go to a non-public address."""
        return self.policy.allow_private

    async def fetch(self, url: str) -> FetchedPage:
        """The main text of the page at ``url``; raises ``UrlRefusedError``, ``UrlFetchError`` or a timeout.

        The time limit covers resolution, connections, redirects and the download, not text extraction.
        """
        try:
            raw = await asyncio.wait_for(self._fetch(url), self.policy.timeout_s)
        except asyncio.TimeoutError:
            raise UrlFetchTimeoutError(f"fetching the page took longer than {self.policy.timeout_s:g} s") from None
        except httpx.TimeoutException:
            raise UrlFetchTimeoutError(f"fetching the page took longer than {self.policy.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise UrlFetchError(f"could not fetch the page: {plain_reason(exc)}") from None
        if raw.mime == "text/plain":
            title, text = None, _decode(raw.body, raw.charset)
        else:
            title, text = await asyncio.to_thread(extract_main_text, raw.body, raw.charset)
        return FetchedPage(url=raw.url, content_type=raw.mime, title=title, text=text)

    async def check(self, url: str, *, hop: int = 0) -> _Target:
        """Parse ``url``, resolve its host and check every address; the address to connect to."""
        parsed = parse_url(url)
        host = parsed.raw_host.decode("ascii")
        port = _port(parsed)
        try:
            addresses = await asyncio.to_thread(self._resolver, host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise UrlRefusedError(f"cannot resolve host {parsed.host!r}: {plain_reason(exc)}") from None
        ips: list[IPAddress] = []
        for address in addresses:
            try:
                ips.append(ipaddress.ip_address(address.split("%", 1)[0]))
            except ValueError:
                raise UrlRefusedError(f"host {parsed.host!r} resolved to an unusable address {address!r}") from None
        if not ips:
            raise UrlRefusedError(f"host {parsed.host!r} has no address")
        for ip in ips:
            problem = address_problem(ip, allow_private=self.allows_private(hop))
            if problem:
                where = "redirect target" if hop else "host"
                raise UrlRefusedError(f"{where} {parsed.host!r} resolves to {ip}, {problem}; not fetched")
        return _Target(parsed, ips[0])

    async def _fetch(self, url: str) -> _RawPage:
        timeout = httpx.Timeout(self.policy.timeout_s)
        async with httpx.AsyncClient(
            transport=self._transport, trust_env=False, follow_redirects=False, timeout=timeout
        ) as client:
            current = url
            for hop in range(self.policy.max_redirects + 1):
                target = await self.check(current, hop=hop)
                response = await client.send(self._request(client, target), stream=True)
                try:
                    self._check_peer(response, target)
                    if response.status_code in REDIRECT_CODES:
                        location = response.headers.get("location")
                        if not location:
                            raise UrlFetchError(f"the page answered HTTP {response.status_code} without a Location")
                        try:
                            current = str(target.url.join(location))
                        except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
                            raise UrlRefusedError(f"the redirect target is not a valid URL: {exc}") from None
                        continue
                    return await self._read(response, target)
                finally:
                    await response.aclose()
        raise UrlFetchError(f"more than {self.policy.max_redirects} redirects")

    def _request(self, client: httpx.AsyncClient, target: _Target) -> httpx.Request:
        pinned = target.url.copy_with(host=str(target.ip))
        headers = {
            "Host": target.url.netloc.decode("ascii"),
            "User-Agent": self.policy.user_agent,
            "Accept": "text/html, text/plain;q=0.9",
            "Accept-Encoding": "gzip, deflate",
        }
        extensions = {"sni_hostname": target.url.raw_host.decode("ascii")} if target.url.scheme == "https" else {}
        return client.build_request("GET", pinned, headers=headers, extensions=extensions)

    @staticmethod
    def _check_peer(response: httpx.Response, target: _Target) -> None:
        stream = response.extensions.get("network_stream")
        if stream is None:  # a test transport
            return
        peer = stream.get_extra_info("server_addr")
        if peer and ipaddress.ip_address(str(peer[0]).split("%", 1)[0]) != target.ip:
            raise UrlRefusedError(f"connected to {peer[0]} instead of the checked address {target.ip}; not fetched")

    async def _read(self, response: httpx.Response, target: _Target) -> _RawPage:
        if not 200 <= response.status_code < 300:
            raise UrlFetchError(f"the page answered HTTP {response.status_code}")
        content_type = response.headers.get("content-type", "")
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in ALLOWED_TYPES:
            shown = mime or "none"
            raise UrlFetchError(f"only text/html and text/plain pages can be tagged (content type: {shown})")
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise UrlFetchError(f"the page is larger than the limit of {limit} bytes")
        if response.is_stream_consumed:  # a transport that read (and decoded) the body already
            chunks, inflater = _once(response.content), _Inflater("")
        else:
            chunks, inflater = (
                response.aiter_raw(),
                _Inflater(response.headers.get("content-encoding", "").strip().lower()),
            )
        body = bytearray()
        async for chunk in chunks:
            body += inflater.feed(chunk, limit - len(body))
            if len(body) > limit:
                raise UrlFetchError(f"the page is larger than the limit of {limit} bytes")
        return _RawPage(url=str(target.url), mime=mime, charset=response.charset_encoding, body=bytes(body))


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")


def extract_main_text(html: bytes, charset: str | None = None) -> tuple[str | None, str]:
    """``(title, main text)`` of an HTML page: trafilatura's extraction, else the page's plain text."""
    import trafilatura

    source: bytes | str = _decode(html, charset) if charset else html
    title, text = None, ""
    try:
        document = trafilatura.bare_extraction(source, with_metadata=True, include_comments=False)
        if document is not None:
            title, text = document.title, document.text or ""
        if not text.strip():
            text = trafilatura.html2txt(source) or ""
    except Exception as exc:  # a third-party parser on untrusted input: report it as an unusable page
        logger.warning("text extraction failed: %s", exc)
        raise UrlFetchError("no text could be extracted from the page") from None
    return title, text.strip()
