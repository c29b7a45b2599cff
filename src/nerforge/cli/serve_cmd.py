"""``nerforge serve MODEL``: a REST API and a web page for one model, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nerforge.cli.checks import check_model
from nerforge.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from nerforge.serving.settings import ServeSettings

logger = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    model: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str | None = None,
    batch_size: int = 32,
    threads: int | None = None,
    settings: ServeSettings | None = None,
) -> None:
    """Load ``model`` and serve it until interrupted (blocks).

    Args:
        model: a nerforge model directory.
        host, port: where to listen; the default listens on loopback only.
        backend: ``torch`` or ``onnx``; default: the model's own (``nerforge.json``).
        batch_size: texts per forward pass.
        threads: torch CPU threads (``None``: torch's default, all cores).
        settings: a :class:`nerforge.serving.ServeSettings` (default limits when ``None``).
    """
    try:
        import uvicorn

        from nerforge.serving import ServeSettings, create_app, load_predictor
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "serve") from None
    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {port}")
    settings = settings_for_host(settings or ServeSettings(), host)
    sock = _bind(host, port)  # a port in use is one line (exit 1) at once, before the model loads or "serving at"
    if threads is not None:
        from nerforge.threads import set_torch_threads

        set_torch_threads(threads)
    predictor = load_predictor(model, backend=backend, batch_size=batch_size)
    app = create_app(predictor, settings)
    if not _is_loopback(host):
        logger.warning("listening on %s: the API and page are reachable from other machines, without authentication",
                       host)
    if settings.allow_private_urls:
        logger.warning("--allow-private-urls: /v1/entities/url may fetch loopback and private-network addresses")
    shown = f"[{host}]" if ":" in host else host
    logger.info("serving %s at http://%s:%d/ (API spec at /openapi.json)", model, shown, port)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False))
    with sock:
        server.run(sockets=[sock])


def settings_for_host(settings: ServeSettings, host: str) -> ServeSettings:
    """``settings`` that also answer for the host name the server was started under (``--host ner.internal``: a
    request for ``ner.internal`` must not be refused by the Host check); an address adds nothing."""
    from nerforge.serving.access import is_ip_address

    if is_ip_address(host) or host.lower() in settings.allowed_hosts:
        return settings
    return dataclasses.replace(settings, allowed_hosts=(*settings.allowed_hosts, host))


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, which uvicorn then listens on.

    Raises:
        OSError: one line naming the address and why (a port in use says so, and what to do).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: not an address this machine can listen on ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = ("the port is in use (another server listens there); stop it or choose another --port"
               if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def serve_cli(
    model: Path = typer.Argument(..., help="Model directory written by 'nerforge train'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    backend: str | None = typer.Option(None, "--backend", help="Inference backend: torch or onnx (default: the model's own)."),
    allow_private_urls: bool = typer.Option(
        False, "--allow-private-urls", help="Let the URL endpoint fetch loopback and private addresses (testing only)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Most texts per model call (requests are batched)."),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", help="How long to gather requests into a batch."),
    max_text_chars: int = typer.Option(20_000, "--max-text-chars", help="Longest text accepted."),
    max_texts: int = typer.Option(64, "--max-texts", help="Most texts in one request."),
    max_csv_rows: int = typer.Option(10_000, "--max-csv-rows", help="Most rows in one CSV upload."),
    max_body_mb: float = typer.Option(5.0, "--max-body-mb", help="Largest request body, in MiB."),
    timeout: float = typer.Option(60.0, "--timeout", help="Longest time a request may take, in seconds."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for torch (default: all cores)."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="A host name the server answers to, besides IP addresses, localhost and --host "
        "(repeatable; '*' for any). Other names get 400, which stops DNS-rebinding attacks."),
    max_per_client: int = typer.Option(64, "--max-per-client", min=1,
                                       help="Most requests one client address may have in progress (then 429)."),
    max_csv_jobs: int = typer.Option(4, "--max-csv-jobs", min=1,
                                     help="Most background CSV jobs queued or running at once (then 503)."),
) -> None:
    """Serve a model: REST API (/v1/...), OpenAPI spec (/openapi.json) and a web page (/)."""
    try:
        from nerforge.serving.settings import ServeSettings
    except ImportError as exc:  # pragma: no cover - settings has no third-party imports
        raise MissingDependencyError(exc.name or "fastapi", "serve") from None
    settings = ServeSettings(
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_text_chars=max_text_chars,
        max_texts=max_texts,
        max_csv_rows=max_csv_rows,
        request_timeout_s=timeout,
        batch_max_texts=batch_size,
        batch_max_wait_ms=batch_wait_ms,
        allow_private_urls=allow_private_urls,
        allowed_hosts=tuple(allowed_host),
        max_concurrent_per_client=max_per_client,
        max_csv_jobs=max_csv_jobs,
    )
    from nerforge.serving.predictor import BACKENDS

    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    check_model(model)  # before the model's libraries load: a wrong path is one line at once
    serve(model, host=host, port=port, backend=backend, batch_size=batch_size, threads=threads, settings=settings)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cli)
