"""CPU threads: how many cores this process may use, and how many torch threads a command gets.

One module for every command: training defaults to every usable core (never the idle ones: the thread count changes
the order of floating-point sums, hence the trained weights, so it must not follow the machine's load); tagging
(predict, evaluate, serve) defaults to the cores idle now, which only changes speed (on a loaded 2-core machine, more
threads than free cores makes every operation wait for the busiest core, ten times slower for a tiny model).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity on Linux, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores this process may use: the smaller of its affinity and the machine's physical cores (one
    ONNX Runtime thread per physical core is usually fastest; hyper-threads share a core's arithmetic units)."""
    usable = usable_cpus()
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        physical = None
    return max(1, min(usable, physical) if physical else usable)


def training_threads() -> int:
    """Torch threads for training when ``training.num_threads`` is not set: every usable core (see above)."""
    return usable_cpus()


def idle_cpus() -> int:
    """The usable cores minus the current load (at least 1): the default for tagging."""
    cpus = usable_cpus()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cpus
    return max(1, min(cpus, round(cpus - busy)))


def set_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads (``None``: :func:`idle_cpus`); returns the number set.

    Process-wide: meant for command-line entry points and workers, not for library code.

    Raises:
        ValueError: ``threads`` < 1.
    """
    import torch

    n = threads if threads is not None else idle_cpus()
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    logger.debug("torch uses %d CPU thread(s)", n)
    return n
