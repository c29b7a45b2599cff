"""The time of ``nerforge tune``: the budget as given (``--budget 1h30m``), as shown, and how many epochs the last
trial of a study can train in what is left of it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nerforge.errors import UsageError

# A trial needs at least this many epochs to be worth starting at the end of a budget: the pruner spares the first
# evaluation, so one epoch could neither be compared nor beat a trial that trained for ten.
MIN_CAPPED_EPOCHS = 2
# The share of the time left that a shortened last trial plans to fill: loading, tokenizing and saving do not
# shrink with the epochs, and a draw may be slower per epoch than the trials before it (a smaller batch).
CAP_SAFETY = 0.85


def epochs_that_fit(seconds_left: float, seconds_per_epoch: float) -> int:
    """How many epochs a trial can train in ``seconds_left``, at the slowest rate a complete trial ran at.

    The study used to stop when less than half of the longest trial's time was left, so a 20-minute study ended 4 to
    5 minutes early (``bench/results/tune-refit.json``: 15 and 16 of 20 minutes, outside the promised 10 %); now the
    last trial trains fewer epochs instead, with its learning-rate schedule fitted to them.

    >>> epochs_that_fit(300.0, 40.0)
    6
    >>> epochs_that_fit(50.0, 40.0)
    1
    """
    if seconds_per_epoch <= 0:
        return 0
    return max(0, math.floor(seconds_left * CAP_SAFETY / seconds_per_epoch))


def epochs_run(result: Any, planned: float) -> int:
    """How many epochs a complete trial ran (early stopping may end it before ``planned``)."""
    rows = getattr(result, "epochs", None) or []
    ran = [math.ceil(float(r["epoch"])) for r in rows if isinstance(r, Mapping) and r.get("epoch") is not None]
    return max(ran) if ran else math.ceil(planned)


def duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{math.ceil(seconds)} s"


def parse_budget(text: str) -> float:
    """``30m``, ``1h``, ``90s``, ``1h30m`` or plain seconds, as seconds.

    Raises:
        UsageError: not a duration, or not above 0.
    """
    import re

    raw = text.strip().lower()
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", raw)
    if not raw or parts is None or not any(parts.groups()):
        raise UsageError(f"--budget {text!r}: a duration such as 30m, 1h, 1h30m or 90s")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise UsageError(f"--budget {text!r}: the budget must be above 0")
    return seconds
