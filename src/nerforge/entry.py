"""The ``nerforge`` console script: signals are quiet from the first instant, then the CLI runs.

Importing the CLI takes a few tenths of a second; a Ctrl-C in that time used to print a ``KeyboardInterrupt``
traceback from the middle of an import. Here SIGINT and SIGTERM end the process with 130 or 143 until the CLI
installs its own handlers (:mod:`nerforge.cli.signals`). This module imports nothing of nerforge before that.
"""

from __future__ import annotations

import signal
from types import FrameType


def _early(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run() -> None:
    """Entry point of the ``nerforge`` console script."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _early)
    from nerforge.cli import _entry

    _entry()
