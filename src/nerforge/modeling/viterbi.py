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
    """Chains are padded to the longest; past its end a chain's score stays as it was and its back-pointers point
    each tag to itself, so tracing back from the last position walks unchanged to the chain's own last word."""
    if not chains:
        return []
    lengths = np.array([c.shape[0] for c in chains], dtype=np.int64)
    width = int(lengths.max())
    num_tags = transitions.shape[0]
    if width == 0:
        return [np.zeros(0, dtype=np.int64) for _ in chains]
    emissions = np.zeros((len(chains), width, num_tags), dtype=np.float64)
    for row, chain in enumerate(chains):
        emissions[row, : chain.shape[0]] = chain
    score = start + emissions[:, 0]
    identity = np.broadcast_to(np.arange(num_tags), (len(chains), num_tags))
    back = np.empty((len(chains), width, num_tags), dtype=np.int64)
    back[:, 0] = identity
    for t in range(1, width):
        cand = score[:, :, None] + transitions
        live = (t < lengths)[:, None]
        back[:, t] = np.where(live, cand.argmax(axis=1), identity)
        score = np.where(live, cand.max(axis=1) + emissions[:, t], score)
    path = np.empty((len(chains), width), dtype=np.int64)
    path[:, -1] = (score + end).argmax(axis=1)
    rows = np.arange(len(chains))
    for t in range(width - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    return [path[row, :n] for row, n in enumerate(lengths.tolist())]
