"""``nerforge serve MODEL --ray``: the same API and page as replicas behind Ray Serve's HTTP proxy.

Each replica builds the app :func:`nerforge.serving.app.create_app` builds for one process (its own model, batcher
and limits), on the node Ray places it on; Ray Serve's proxy spreads the requests between them. Nothing of the
distribution is nerforge's own: the deployment is Ray Serve's, the cluster is the user's (``--address``, joined as
Ray batch prediction and ``tune`` join it) or a local Ray instance. The model directory must be at the same path on
every node (one machine, or a shared file system).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from nerforge.errors import MissingDependencyError, UsageError
from nerforge.serving.settings import ServeSettings

logger = logging.getLogger(__name__)

APP_NAME = "nerforge"


def build_app(model: str, backend: str | None, batch_size: int, threads: int | None, settings: ServeSettings) -> Any:
    """The app of one replica (run by Ray Serve on the replica's node): the model loaded there."""
    from nerforge.serving.app import create_app
    from nerforge.serving.predictor import load_predictor

    if threads is not None:
        from nerforge.threads import set_torch_threads

        set_torch_threads(threads)
    return create_app(load_predictor(model, backend=backend, batch_size=batch_size, threads=threads), settings)


def ongoing_requests(batch_size: int) -> int:
    """Requests Ray Serve may send a replica before it answers: enough for two full batches of one-text requests
    waiting while one runs (and never fewer than Ray Serve's own default, 5).

    >>> ongoing_requests(32), ongoing_requests(1)
    (96, 5)
    """
    return max(5, 3 * batch_size)


def deploy(
    model: str | Path,
    *,
    replicas: int,
    host: str,
    port: int,
    backend: str | None = None,
    batch_size: int = 32,
    threads: int | None = None,
    settings: ServeSettings | None = None,
) -> str:
    """Deploy ``model`` as ``replicas`` replicas behind Ray Serve's proxy at ``host:port`` on the Ray session this
    process has joined; returns the URL.

    Raises:
        MissingDependencyError: Ray Serve is not installed (``pip install 'nerforge[ray]'``).
    """
    try:
        from ray import serve
    except ImportError:
        raise MissingDependencyError("ray.serve", "ray") from None
    from nerforge.serving.server import settings_for_host

    model = str(Path(model).resolve())
    settings = settings_for_host(settings or ServeSettings(), host)
    serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")

    def builder() -> Any:  # a function of no argument (Ray Serve calls it on each replica); cloudpickle carries it
        return build_app(model, backend, batch_size, threads, settings)

    @serve.ingress(builder)
    class NerforgeReplica:  # the app of one replica; Ray Serve routes every request to it
        pass

    # Each replica gathers concurrent requests into batches of up to batch_size texts (its own batcher, as one
    # process does): Ray Serve's default of 5 requests in flight per replica starved it (one replica under 32
    # clients: 10 requests/s, p50 3.9 s, the CPU idle; docs/benchmarks.md, *Ray Serve replicas*).
    deployment = serve.deployment(name=APP_NAME, num_replicas=replicas, max_ongoing_requests=ongoing_requests(batch_size),
                                  ray_actor_options={"num_cpus": threads or 1})(NerforgeReplica)  # fmt: skip
    serve.run(deployment.bind(), name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{host}:{port}/"


def serve_on_ray(
    model: str | Path,
    *,
    address: str | None,
    replicas: int,
    host: str,
    port: int,
    backend: str | None = None,
    batch_size: int = 32,
    threads: int | None = None,
    settings: ServeSettings | None = None,
) -> None:
    """Join the cluster at ``address`` (or start a local Ray instance), deploy (:func:`deploy`), and keep the
    deployment up until Ctrl-C, then remove it (blocks).

    Raises:
        UsageError: a bad value, or a cluster that cannot be reached (one line).
    """
    if replicas < 1:
        raise UsageError(f"--replicas must be at least 1, got {replicas}")
    if not (Path(model) / "nerforge.json").is_file():
        raise UsageError(f"{model}: not a nerforge model directory (no nerforge.json)")
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None
    if address:
        from nerforge.cluster import join_cluster

        join_cluster(address)
    else:
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    try:
        url = deploy(model, replicas=replicas, host=host, port=port, backend=backend, batch_size=batch_size,
                     threads=threads, settings=settings)  # fmt: skip
        logger.info("serving %s at %s: %d replica(s) behind Ray Serve's proxy (Ctrl-C stops them)", model, url,
                    replicas)  # fmt: skip
        while True:
            time.sleep(1.0)
    finally:
        try:
            from ray import serve

            serve.delete(APP_NAME)
            serve.shutdown()
        except Exception as exc:  # noqa: BLE001 - stopping: say what was left, never hide the first error
            logger.warning("Ray Serve did not stop cleanly: %s", exc)
        ray.shutdown()
