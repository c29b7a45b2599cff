"""IOB2 transition constraints and Viterbi decoding in numpy (no torch): what the prediction engine runs after any
backend. :func:`viterbi_many` decodes every chain of a batch at once, one numpy step per position of the longest
instead of one per word of every chain (on 500 CoNLL sentences with a 2-layer student, profiled: 0.060 s of Viterbi
for one chain at a time, 0.035 s together). See :mod:`nerforge.modeling.crf` for the model side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FORBIDDEN = -10000.0  # the score of a transition IOB2 forbids


def allowed_transitions(tags: Sequence[str], scheme: str = "iob2") -> np.ndarray:
    """``allowed[i, j]``: may tag ``j`` follow tag ``i`` in ``scheme``? Read from the scheme table
    (:func:`nerforge.data.schemes.may_follow`: in IOB2, ``I-X`` only after ``B-X`` or ``I-X``). Each distinct
    (letter, same type) pair is asked once, so hundreds of types cost no more than a few."""
    from nerforge.data.schemes import may_follow, parse_tag

    parsed = [parse_tag(t) for t in tags]
    cache: dict[tuple[str, str, bool], bool] = {}
    n = len(tags)
    allowed = np.ones((n, n), dtype=bool)
    for i, p in enumerate(parsed):
        for j, c in enumerate(parsed):
            key = (p.prefix, c.prefix, p.type == c.type)
            if key not in cache:
                cache[key] = may_follow(tags[i], tags[j], scheme)
            allowed[i, j] = cache[key]
    return allowed


# Bytes the (chains, tags, tags) candidate scores of one step may take: chains are decoded in groups that fit. With
# 597 tags all 300 dev chains at once took 850 MB per step (bench/many_types.py: a 4.7 GB peak against a 2.1 GB
# estimate); with 9 tags a group is thousands of chains, as before.
STEP_BYTES = 64 * 2**20


def group_size(num_tags: int) -> int:
    """How many chains :func:`viterbi_many` decodes together with ``num_tags`` tags."""
    return max(1, STEP_BYTES // (3 * 8 * num_tags * num_tags))


def viterbi_many(
    chains: Sequence[np.ndarray], start: np.ndarray, end: np.ndarray, transitions: np.ndarray
) -> list[np.ndarray]:
    """The best tag ids of each chain ``(n_i, num_tags)`` (``n_i`` may be 0), decoded together in groups of
    :func:`group_size` chains (bounded memory whatever the tag count)."""
    size = group_size(int(transitions.shape[0]))
    if len(chains) > size:
        return [
            path
            for k in range(0, len(chains), size)
            for path in _viterbi_group(chains[k : k + size], start, end, transitions)
        ]
    return _viterbi_group(chains, start, end, transitions)


def _viterbi_group(
    chains: Sequence[np.ndarray], start: np.ndarray, end: np.ndarray, transitions: np.ndarray
) -> list[np.ndarray]:
    """Chains are sorted longest first and padded to the longest; step ``t`` updates only the chains still running
    (a prefix of the rows), so a chunk of short sentences with one long one costs about its words, not its chains
    times the longest (1,000 CoNLL-2003 test sentences, 124 words at most: 71 ms before, 8.3 ms; bench/viterbi.py). Past its end a
    chain's back-pointers point each tag to itself, so tracing back from the last position walks unchanged to the
    chain's own last word."""
    if not chains:
        return []
    lengths = np.array([c.shape[0] for c in chains], dtype=np.int64)
    width = int(lengths.max())
    num_tags = transitions.shape[0]
    if width == 0:
        return [np.zeros(0, dtype=np.int64) for _ in chains]
    order = np.argsort(-lengths, kind="stable")
    ordered = lengths[order]
    emissions = np.zeros((len(chains), width, num_tags), dtype=np.float64)
    for row, index in enumerate(order.tolist()):
        emissions[row, : ordered[row]] = chains[index]
    running = (ordered[None, :] > np.arange(width)[:, None]).sum(axis=1)  # chains longer than t: rows [:running[t]]
    back = np.empty((len(chains), width, num_tags), dtype=np.int64)
    back[:] = np.arange(num_tags)
    score = start + emissions[:, 0]
    for t in range(1, width):
        k = int(running[t])
        cand = score[:k, :, None] + transitions
        back[:k, t] = cand.argmax(axis=1)
        score[:k] = cand.max(axis=1) + emissions[:k, t]
    path = np.empty((len(chains), width), dtype=np.int64)
    path[:] = (score + end).argmax(axis=1)[:, None]  # a finished chain's tag stays its last word's, back to its end
    for t in range(width - 1, 0, -1):
        k = int(running[t])
        path[:k, t - 1] = back[np.arange(k), t, path[:k, t]]
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(chains)
    for row, index in enumerate(order.tolist()):
        out[index] = path[row, : ordered[row]]
    return out
