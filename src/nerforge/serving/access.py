"""Who may ask this server: the Host it is asked under, where a browser request comes from, and how many requests
one client may have in progress.

* **Host** (DNS rebinding): a web page on ``evil.example`` can point its own name at 127.0.0.1 and then drive a
  local server from the victim's browser, as "same origin". Browsers send the name they used in ``Host``, so the
  server answers only for names it knows (``localhost`` and the configured ones) and for IP addresses (a page
  loaded from an IP address is the server's own page: an address cannot be rebound).
* **Cross-site requests** (CSRF): a page on another site can make a browser post a form (a CSV upload, say) to
  the local server without reading the answer. Browsers say where a request comes from (``Sec-Fetch-Site``,
  ``Origin``); a state-changing request (POST, PUT, PATCH, DELETE) from another site, or from an opaque origin
  (``Origin: null``), is refused. Clients that are not browsers (curl, scripts, Label Studio's server) send
  neither header and are not affected.
* **Per-client concurrency**: one client address may have at most N requests in progress; the next gets 429 with
  ``Retry-After``, so one client cannot occupy every worker. (Behind a reverse proxy every client has the proxy's
  address: raise the limit there.)

Starlette's ``TrustedHostMiddleware`` checks a host list but cannot allow "any IP address" nor check origins,
so these are our own small pure functions, called by :class:`~nerforge.serving.guards.GuardMiddleware`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def split_host(host: str) -> tuple[str, str]:
    """``(name, port)`` of a ``Host`` header value (``[::1]:8000`` -> ``("::1", "8000")``), name lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":")
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_problem(host: str | None, allowed: Iterable[str]) -> str | None:
    """Why a request with this ``Host`` header is refused, or ``None`` when it may be answered."""
    if host is None:  # HTTP/1.0 clients may omit it; browsers never do
        return None
    name, _ = split_host(host)
    name = name.rstrip(".")
    allowed = set(allowed) | LOOPBACK_NAMES
    if "*" in allowed or is_ip_address(name) or name in allowed:
        return None
    names = "".join(f", {n}" for n in sorted(allowed - LOOPBACK_NAMES))
    return (
        f"this server does not answer for the host name {name!r} (it answers for IP addresses, localhost{names}); "
        "start it with --allowed-host NAME to add a name"
    )


def cross_site_problem(method: str, headers: Mapping[str, str]) -> str | None:
    """Why a browser request from another site is refused, or ``None``.

    Only state-changing methods are checked; reading pages and results is harmless, as the browser will not let
    another site read the answer.
    """
    if method.upper() in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in ALLOWED_FETCH_SITES:
        return f"cross-site requests are refused (Sec-Fetch-Site: {site}); use the page served by this server"
    origin = headers.get("origin")
    if origin is None:
        return None
    if origin.strip().lower() == "null":
        return "requests from an opaque origin (Origin: null) are refused"
    parts = urlsplit(origin.strip())
    if split_host(parts.netloc) != split_host(headers.get("host", "")) and not _default_port_match(parts, headers):
        return f"cross-site requests are refused (Origin: {origin}); use the page served by this server"
    return None


def _default_port_match(origin, headers: Mapping[str, str]) -> bool:  # noqa: ANN001 - a urllib SplitResult
    """``Origin: http://host`` against ``Host: host:80`` (and https / 443): the same place, written two ways."""
    name, port = split_host(headers.get("host", ""))
    default = {"http": "80", "https": "443"}.get(origin.scheme, "")
    oname, oport = split_host(origin.netloc)
    return oname == name and (oport or default) == (port or default)


class ClientLimiter:
    """Counts the requests in progress per client address."""

    def __init__(self, max_per_client: int) -> None:
        self.max_per_client = max_per_client
        self._in_flight: Counter[str] = Counter()

    def enter(self, client: str) -> bool:
        """Count one more request of ``client``; ``False`` (and not counted) when it is at its limit."""
        if self._in_flight[client] >= self.max_per_client:
            return False
        self._in_flight[client] += 1
        return True

    def leave(self, client: str) -> None:
        self._in_flight[client] -= 1
        if self._in_flight[client] <= 0:
            del self._in_flight[client]

    def in_flight(self, client: str) -> int:
        return self._in_flight.get(client, 0)
