"""SIGINT and SIGTERM as exceptions: a stopped command cleans up after itself and exits 130 or 143.

Python turns SIGINT into :class:`KeyboardInterrupt`, which Typer (non-standalone mode) swallows and turns into a
return value, and leaves SIGTERM to kill the process without running any ``finally``. Both become
:class:`~nerforge.errors.Interrupted` here. A second signal while the first one's cleanup runs is remembered but not
raised again, so that pressing Ctrl-C twice cannot cut a cleanup short and leave a temporary file behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from nerforge.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_as_exceptions(*, exiting: bool = False) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (once); the previous handlers come back after.

    ``exiting``: the process ends after the block (the console script). Then, once a signal has stopped the command,
    further signals are ignored instead of handed back to Python's default handler: a second Ctrl-C pressed right
    after the first must not print a ``KeyboardInterrupt`` traceback while the process prints its last line.
    Outside the main thread (where Python cannot install handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return  # the first signal's cleanup is running; let it finish
        raised = True
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if raised and exiting else old)
