"""IOB2 transition constraints and Viterbi decoding of one chain, in numpy (no torch): what the prediction engine
runs after any backend. See :mod:`nerforge.modeling.crf` for the model side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FORBIDDEN = -10000.0  # the score of a transition IOB2 forbids


def allowed_transitions(tags: Sequence[str]) -> np.ndarray:
    """``allowed[i, j]``: may tag ``j`` follow tag ``i`` in IOB2? (``I-X`` only after ``B-X`` or ``I-X``)."""
    n = len(tags)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            for i, prev in enumerate(tags):
                allowed[i, j] = prev in (f"B-{tag[2:]}", tag)
    return allowed


def viterbi(emissions: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """The best tag ids of one chain ``emissions`` ``(n, num_tags)`` (``n`` may be 0)."""
    n = emissions.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    score = start + emissions[0]
    back = np.zeros((n, emissions.shape[1]), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + transitions
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + emissions[t]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int((score + end).argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
