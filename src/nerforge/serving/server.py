"""Serving a model until interrupted: :func:`serve` binds first (a port in use is one line at once, before the
model loads), loads the model, and runs the app under uvicorn on the bound socket."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import socket
from pathlib import Path

from nerforge.errors import MissingDependencyError, UsageError
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

        from nerforge.serving.app import create_app
        from nerforge.serving.predictor import load_predictor
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
