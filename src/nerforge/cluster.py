"""Joining an existing Ray cluster: one place for Ray batch prediction, ``tune --address`` and ``serve --ray``.

An address nothing answers at is refused in one line within seconds (Ray itself retries for minutes), and a cluster
that refuses the connection is one line with the likely cause.
"""

from __future__ import annotations

import logging
import os

from nerforge.errors import MissingDependencyError, UsageError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` or ``ray://host:port`` address; ``None`` for ``auto`` and the like."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Refuse a cluster address nothing answers at, in one line and within ``timeout`` seconds (Ray itself retries
    for minutes, logging a warning every few seconds).

    Raises:
        UsageError: the host:port refuses or does not answer a TCP connection.
    """
    import socket

    found = _host_port(address)
    if found is None:
        return
    host, port = found
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({why}); start one with 'ray start --head' (its address is "
            "printed there and by 'ray status'), or leave out --address to run on a local Ray instance"
        ) from None


def join_cluster(address: str, *, log_to_driver: bool = True) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:10001``, ``host:6379``); ``log_to_driver``: the
    workers' output is printed here too.

    Raises:
        UsageError: nothing answers at the address (within seconds), or Ray refuses to join (one line, with the
            likely cause).
        MissingDependencyError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None
    check_reachable(address)
    logger.info("joining the Ray cluster at %s", address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=log_to_driver)
    except Exception as exc:
        if not isinstance(exc, (ConnectionError, RuntimeError, ValueError)) and not type(exc).__module__.startswith(
            "ray"
        ):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if os.environ.get("RAY_AUTH_MODE", "disabled") != "token":
            first += (
                " (the address answers: if the cluster uses token authentication, as 'ray start' sets up "
                "by default, run with RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or "
                "~/.ray/auth_token)"
            )
        raise UsageError(f"cannot join the Ray cluster at {address}: {first}") from None
