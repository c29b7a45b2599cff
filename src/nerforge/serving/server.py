"""Serving a model until interrupted: :func:`serve` binds first (a port in use is one line at once, before the
model loads), loads the model, and runs the app under uvicorn on the bound socket."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import socket
import sys
from pathlib import Path
from typing import Any

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
    workers: int = 1,
    learn: Any = None,
    trainer: Any = None,
) -> None:
    """Load ``model`` and serve it until interrupted (blocks).

    Args:
        model: a nerforge model directory.
        host, port: where to listen; the default listens on loopback only.
        backend: ``torch`` or ``onnx``; default: the model's own (``nerforge.json``).
        batch_size: texts per forward pass.
        threads: torch CPU threads (``None``: torch's default, all cores).
        settings: a :class:`nerforge.serving.ServeSettings` (default limits when ``None``).
        learn: a :class:`~nerforge.serving.learning.LearnOptions`: Label Studio's *Start training* trains new
            versions of the model while it serves (one process only), with ``trainer``
            (``nerforge.training.run.train``; serving does not import training).
        workers: processes serving the same port, each with its own copy of the model and batcher, and with
            ``threads`` threads (default: the usable cores shared out between them); the kernel spreads the
            connections between them.
    """
    try:
        import uvicorn

        from nerforge.serving.app import create_app
        from nerforge.serving.predictor import load_predictor
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "serve") from None
    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {port}")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    settings = settings_for_host(settings or ServeSettings(), host)
    # a port in use is one line (exit 1) at once, before the model loads or "serving at"; workers each listen on
    # a socket of their own on the same port (SO_REUSEPORT), which this one holds without listening
    sock = _bind(host, port, reuse_port=workers > 1 and REUSE_PORT)
    if workers > 1 and learn is not None:
        sock.close()
        raise UsageError("--learn serves from one process (each version swaps into it); leave out --workers")
    if workers > 1:
        _serve_workers(model, host, port, sock, backend, batch_size, threads, settings, workers)
        return
    if threads is not None:
        from nerforge.threads import set_torch_threads

        set_torch_threads(threads)
    predictor = load_predictor(model, backend=backend, batch_size=batch_size, threads=threads)
    learner = None
    if learn is not None:
        from nerforge.serving.learning import Learner

        if trainer is None:
            raise UsageError("learning needs a trainer (nerforge.training.run.train)")

        def learner(service: Any) -> Any:
            return Learner(service, model, learn, trainer)

    app = create_app(predictor, settings, learner=learner)
    if not _is_loopback(host):
        logger.warning(
            "listening on %s: the API and page are reachable from other machines, without authentication", host
        )
    if settings.allow_private_urls:
        logger.warning("--allow-private-urls: /v1/entities/url may fetch loopback and private-network addresses")
    shown = f"[{host}]" if ":" in host else host
    logger.info("serving %s at http://%s:%d/ (API spec at /openapi.json)", model, shown, port)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False))
    with sock:
        server.run(sockets=[sock])


WORKER_SPEC_ENV = "NERFORGE_SERVE_WORKER"  # what each worker process loads: JSON from _serve_workers


def _serve_workers(
    model: str | Path,
    host: str,
    port: int,
    sock: socket.socket,
    backend: str | None,
    batch_size: int,
    threads: int | None,
    settings: ServeSettings,
    workers: int,
) -> None:
    """Serve with ``workers`` processes on the bound socket (uvicorn's supervisor restarts one that dies); each
    builds its app with :func:`worker_app` from the spec in :data:`WORKER_SPEC_ENV`."""
    import json
    import os

    import uvicorn

    from nerforge.model_dir import ModelMeta
    from nerforge.threads import usable_cpus

    ModelMeta.load(model)  # a model the workers cannot load is one line here, not a crash loop there
    share = threads or max(1, usable_cpus() // workers)
    os.environ[WORKER_SPEC_ENV] = json.dumps({"model": str(Path(model).resolve()), "backend": backend,
                                              "batch_size": batch_size, "threads": share,
                                              "settings": settings.to_dict()})  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    logger.info(
        "serving %s at http://%s:%d/ with %d worker processes of %d thread(s) each", model, shown, port, workers, share
    )
    if REUSE_PORT:
        with sock:
            _supervise(host, port, workers)
        return
    with sock:
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            fd=sock.fileno(),
            workers=workers,
            log_level="info",
            access_log=False,
        )


# Linux spreads the connections of a port between the sockets listening on it with SO_REUSEPORT (by a hash of each
# connection's addresses). With one shared socket, as uvicorn's workers have, a worker that wakes up accepts every
# connection waiting: 32 keep-alive clients were split 27 to 5 between two workers, so two workers served fewer
# requests than one (docs/benchmarks.md, *Serving under load*). Elsewhere SO_REUSEPORT does not balance: uvicorn's way.
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
_RESTART_AFTER_S = 10.0  # a worker that dies sooner after starting is not restarted: the server stops with an error


def _supervise(host: str, port: int, workers: int) -> None:
    """Run ``workers`` processes that each listen on ``host:port`` with SO_REUSEPORT (:func:`_listen_alone`), until
    Ctrl-C or SIGTERM (passed on to them as SIGTERM: each finishes its requests); a worker that dies is started
    again, unless it died at start-up."""
    import multiprocessing
    import multiprocessing.connection
    import signal
    import time

    context = multiprocessing.get_context("spawn")  # no fork of a process with threads and a loaded model

    def start() -> Any:
        process = context.Process(target=_listen_alone, args=(host, port), name="nerforge-worker")
        process.start()
        return process, time.monotonic()

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the server as Ctrl-C does

    previous = signal.signal(signal.SIGTERM, stop)
    running = [start() for _ in range(workers)]
    try:
        while True:
            multiprocessing.connection.wait([p.sentinel for p, _ in running], timeout=1.0)
            for k, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if time.monotonic() - started < _RESTART_AFTER_S:
                    raise UsageError(f"a worker process exited with code {process.exitcode} while starting; "
                                     "see the lines above")  # fmt: skip
                logger.warning("worker %d exited with code %s; starting another", process.pid, process.exitcode)
                running[k] = start()
    except KeyboardInterrupt:
        logger.info("stopping %d worker processes", len(running))
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in progress, then exits
        deadline = time.monotonic() + 30
        for process, _ in running:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def _listen_alone(host: str, port: int) -> None:
    """One worker of :func:`_supervise`: its own SO_REUSEPORT socket on ``host:port``, the app of
    :func:`worker_app`, uvicorn."""
    import signal

    import uvicorn

    # Ctrl-C reaches the whole process group: while the model loads it is the supervisor's to handle (it stops the
    # workers with SIGTERM); once serving, uvicorn's own handlers finish the requests in progress either way
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = _bind(host, port, reuse_port=True)
    config = uvicorn.Config(f"{__name__}:worker_app", factory=True, log_level="info", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def worker_app() -> object:
    """The app of one worker process of ``nerforge serve --workers N`` (uvicorn calls it in each process)."""
    import json
    import os

    from nerforge.serving.app import create_app
    from nerforge.serving.predictor import load_predictor
    from nerforge.threads import set_torch_threads

    spec = json.loads(os.environ[WORKER_SPEC_ENV])
    set_torch_threads(spec["threads"])
    predictor = load_predictor(spec["model"], backend=spec["backend"], batch_size=spec["batch_size"],
                               threads=spec["threads"])  # fmt: skip
    return create_app(predictor, ServeSettings(**spec["settings"]))


def settings_for_host(settings: ServeSettings, host: str) -> ServeSettings:
    """``settings`` that also answer for the host name the server was started under (``--host ner.internal``: a
    request for ``ner.internal`` must not be refused by the Host check); an address adds nothing."""
    from nerforge.serving.access import is_ip_address

    if is_ip_address(host) or host.lower() in settings.allowed_hosts:
        return settings
    return dataclasses.replace(settings, allowed_hosts=(*settings.allowed_hosts, host))


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to ``host:port``, which uvicorn then listens on; ``reuse_port``: with SO_REUSEPORT, so that
    other sockets of this user may listen on the same port (``--workers``).

    Raises:
        OSError: one line naming the address and why (a port in use says so, and what to do).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: not an address this machine can listen on ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = (
            "the port is in use (another server listens there); stop it or choose another --port"
            if exc.errno == errno.EADDRINUSE
            else exc.strerror or str(exc)
        )
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock
