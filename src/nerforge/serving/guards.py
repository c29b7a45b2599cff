"""Limits and error answers shared by every route of the serving app.

``GuardMiddleware`` (plain ASGI, so it sees the raw body stream) first refuses requests under a host name the
server does not answer for (400), cross-site browser posts (403) and a client's requests past its concurrency
limit (429) (see :mod:`nerforge.serving.access`), then refuses bodies over the size limit with 413 before the app
reads them, puts one time limit on the whole request (upload included) and answers 504 past it, and adds security
headers to every response. The exception handlers turn every error into the same JSON shape
(:class:`~nerforge.serving.schemas.ErrorResponse`); strings in it are made encodable first, so no input can make an
error answer itself fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nerforge.errors import DataFormatError, NerforgeError
from nerforge.prediction.urlfetch import UrlFetchError, UrlFetchTimeoutError, UrlRefusedError
from nerforge.serving.access import ClientLimiter, cross_site_problem, host_problem
from nerforge.serving.batching import PredictionError
from nerforge.serving.body_errors import SHAPE_TEXT, body_problem, upload_problem
from nerforge.serving.csvio import CsvLimitError

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # The page loads only its own script and style; nothing inline, nothing from elsewhere.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class ApiError(Exception):
    """An error answer chosen by a route: HTTP status, stable code, message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _safe(text: Any) -> str:
    """``text`` as a string that can always be encoded as UTF-8 (unpaired surrogates escaped)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": _safe(message)}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


# (exception class, status, code), most specific first.
_ERROR_MAP: tuple[tuple[type[Exception], int, str], ...] = (
    (CsvLimitError, 413, "too_many_rows"),
    (DataFormatError, 422, "invalid_csv"),
    (UrlRefusedError, 422, "url_refused"),
    (UrlFetchTimeoutError, 504, "fetch_timeout"),
    (UrlFetchError, 422, "url_unusable"),
    (NerforgeError, 422, "invalid_input"),
)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (Starlette's 405 names only the first route's, and GET and
    DELETE of ``/v1/jobs/{id}`` are two routes)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, as an ``ErrorResponse``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(NerforgeError)
    async def _nerforge_error(_: Request, exc: NerforgeError) -> JSONResponse:
        for cls, status, code in _ERROR_MAP:
            if isinstance(exc, cls):
                return error_response(status, code, str(exc))
        return error_response(422, "invalid_input", str(exc))  # pragma: no cover - NerforgeError is in the map

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        unparsable = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if unparsable is not None:
            where = unparsable.get("loc", ())
            at = f" (at character {where[-1]})" if len(where) > 1 and isinstance(where[-1], int) else ""
            return error_response(
                400,
                "invalid_json",
                f"the body is not valid JSON{at}; send a JSON object with Content-Type: application/json",
            )
        body = getattr(exc, "body", None)
        if isinstance(body, (bytes, bytearray)) and request.url.path in SHAPE_TEXT:  # not sent as JSON
            sent = request.headers.get("content-type") or "no Content-Type"
            return error_response(
                415, "unsupported_media_type", f"send the body as JSON with Content-Type: application/json (got {sent})"
            )
        plain = body_problem(request.url.path, body) if body is not None else None
        plain = plain or upload_problem(request.url.path, errors)
        if body is None and request.url.path in SHAPE_TEXT and any(e.get("type") == "missing" for e in errors):
            plain = f"the body is empty; it must be {SHAPE_TEXT[request.url.path]}"
        details = [
            {
                "loc": [_safe(part) for part in err.get("loc", ())],
                "msg": _safe(err.get("msg", "")),
                "type": _safe(err.get("type", "")),
            }
            for err in errors
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        if plain is not None:
            message = plain
        elif request.url.path in SHAPE_TEXT:
            message = f"the body must be {SHAPE_TEXT[request.url.path]} ({message})"
        return error_response(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keep the exception's headers: a 405 must say which methods are allowed (Allow).
        headers = {k: v for k, v in (exc.headers or {}).items() if exc.status_code != 405 or k.lower() != "allow"}
        if exc.status_code == 405:
            headers["allow"] = ", ".join(_allowed_methods(request))
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # Starlette's answer when the JSON decoder gives up (nesting deeper than it recurses, for one)
            return error_response(
                400,
                "invalid_json",
                "the body is not valid JSON, or is nested too deeply to "
                "read; send a JSON object with Content-Type: application/json",
            )
        return error_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail), headers=headers or None)

    @app.exception_handler(PredictionError)
    async def _prediction_error(_: Request, exc: PredictionError) -> JSONResponse:
        return error_response(500, "prediction_failed", f"the model failed on this request: {exc}")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return error_response(500, "internal_error", "unexpected server error; see the server log")


class GuardMiddleware:
    """Host, origin and per-client checks (400, 403, 429), body size limit (413), whole-request time limit (504)
    and security headers, for every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        timeout_s: float,
        allowed_hosts: tuple[str, ...] = ("*",),
        max_per_client: int = 1_000_000,
        route_limits: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        # path prefix -> (body bytes, seconds): routes whose client sends more, or waits longer, than the API's
        self.route_limits = dict(route_limits or {})
        self.allowed_hosts = allowed_hosts
        self.limiter = ClientLimiter(max_per_client)

    def _refusal(self, scope: Scope) -> tuple[int, str, str, dict[str, str] | None] | None:
        headers = Headers(scope=scope)
        problem = host_problem(headers.get("host"), self.allowed_hosts)
        if problem:
            return 400, "host_not_allowed", problem, None
        problem = cross_site_problem(scope.get("method", "GET"), headers)
        if problem:
            return 403, "cross_site_refused", problem, None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            status, code, message, extra = refusal
            await error_response(status, code, message, headers=extra)(scope, receive, send_with_headers)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if not self.limiter.enter(client):
            message = (
                f"this client already has {self.limiter.max_per_client} requests in progress, the most this "
                "server allows; retry when one has finished"
            )
            response = error_response(429, "too_many_requests", message, headers={"retry-after": "1"})
            await response(scope, receive, send_with_headers)
            return
        max_bytes, timeout_s = self._limits(scope.get("path", ""))
        try:
            await asyncio.wait_for(self._handle(scope, receive, send_with_headers, max_bytes), timeout_s)
        except asyncio.TimeoutError:
            logger.warning("%s %s took longer than %g s", scope.get("method"), scope.get("path"), timeout_s)
            if not started:
                response = error_response(504, "timeout", f"the request took longer than {timeout_s:g} s")
                await response(scope, receive, send_with_headers)
        finally:
            self.limiter.leave(client)

    def _limits(self, path: str) -> tuple[int, float]:
        for prefix, limits in self.route_limits.items():
            if path.startswith(prefix):
                return limits
        return self.max_body_bytes, self.timeout_s

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        message = f"the request body is larger than {max_bytes} bytes, the limit of this server"
        await error_response(413, "body_too_large", message)(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            await self._too_large(scope, receive, send, max_bytes)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # the client left during the upload: no one to answer
                return
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > max_bytes:
                await self._too_large(scope, receive, send, max_bytes)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)
