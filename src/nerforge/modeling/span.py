"""The span head's pure parts: the spans a window scores, their gold labels, and the choice of the spans kept.

A span head (``nerforge train --head span``) scores every span of up to ``max_width`` words that starts at a word a
window owns, for each entity type or none, so entities nested in one another (``[[Bonn]LOC-er Universität]ORG``)
are found in one layer. The model sees, for each window position that starts a word, the positions of the last
piece of each of the next ``max_width`` words (the ``span_ends`` input: ``(positions, max_width)``); its logits are
``(positions, max_width * (types + 1))``, so windows, padding, batching, ONNX Runtime and the parity check treat them
as a tagger's per-position logits. A span that reaches past the end of its window is neither trained nor predicted
there; windows overlap (the stride), so a span that starts near a window's end is whole in its owner window unless
it is longer than the stride.

Cost: a window of ``n`` pieces holds ``n * max_width`` span scores, never ``n * n``, so training memory and time grow
linearly with the sentence length (:meth:`nerforge.modeling.plan.HeadPlan.training_bytes_per_token`).

Decoding (:func:`choose_spans`): a span is a candidate when a type scores above none; candidates are taken by score,
highest first, and one is dropped when it crosses a span already taken (they overlap, neither holds the other) or
repeats its words. Nested spans are kept. ``keep_crossing`` keeps crossing ones too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nerforge.alignment import IGNORE_INDEX
from nerforge.types import Span

NONE_ID = 0  # the "no entity" class of every span; type k of the model's types is k + 1


@dataclass(frozen=True)
class ScoredSpan:
    """A predicted span of words ``[start, end)`` with its type and probability."""

    start: int
    end: int
    label: str
    score: float

    @property
    def span(self) -> Span:
        return Span(self.start, self.end, self.label)


def span_types(tags: Sequence[str]) -> tuple[str, ...]:
    """The entity types of a span head, in the order of its IOB2 tags (the class of type ``k`` is ``k + 1``).

    >>> span_types(["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG"])
    ('LOC', 'ORG')
    """
    return tuple(t[2:] for t in tags if t.startswith("B-"))


def gold_table(spans: Iterable[Span], n_words: int, types: Sequence[str], width: int) -> tuple[np.ndarray, int, int]:
    """Each word's gold class for the spans starting there: ``table[w, k]`` is the class of words ``[w, w+k+1)``
    (``NONE_ID`` for no entity); and how many spans were left out: longer than ``width`` words, and on the same
    words as another (a span has one class: of two entities on the same words, the first in sorted order is kept)."""
    index = {t: k + 1 for k, t in enumerate(types)}
    table = np.zeros((n_words, width), dtype=np.int64)
    too_long = same_words = 0
    for span in sorted(set(spans)):
        k = span.end - span.start - 1
        if k >= width:
            too_long += 1
        elif span.label in index:
            if table[span.start, k] == NONE_ID:
                table[span.start, k] = index[span.label]
            else:
                same_words += 1
    return table, too_long, same_words


def longest_span(examples_spans: Iterable[Iterable[Span]]) -> int:
    """The most words any span has (0 with none)."""
    return max((s.end - s.start for spans in examples_spans for s in spans), default=0)


def window_rows(
    owned: Mapping[int, int],
    every: Mapping[int, int],
    pieces: Sequence[Sequence[int]],
    window_end: int,
    n_positions: int,
    width: int,
    gold: np.ndarray | None,
) -> tuple[list[int], list[int] | None]:
    """The ``span_ends`` input and the labels of one window, each flattened ``(n_positions, width)`` row-major.

    Args:
        owned: owned word → position of its first piece (the window's ``first_piece_of``).
        every: every word of the window with a piece → position of its first piece.
        pieces: the sentence's word pieces.
        window_end: the first word after the window.
        n_positions: the window's length in pieces (special tokens included).
        width: the head's ``max_width``.
        gold: the sentence's :func:`gold_table` (training), else ``None``.

    A position that starts no owned word, and a span reaching past the window, gets end 0 and label
    ``IGNORE_INDEX``.
    """
    ends = np.zeros((n_positions, width), dtype=np.int64)
    labels = np.full((n_positions, width), IGNORE_INDEX, dtype=np.int64) if gold is not None else None
    ordered = sorted(every)
    last: dict[int, int] = {}
    for i, w in enumerate(ordered):
        limit = every[ordered[i + 1]] - 1 if i + 1 < len(ordered) else n_positions - 1
        last[w] = min(every[w] + max(len(pieces[w]), 1) - 1, limit)
    for w, pos in owned.items():
        end_piece = last[w]
        for k in range(min(width, window_end - w)):
            end_piece = last.get(w + k, end_piece)  # a word without pieces ends where the word before it did
            ends[pos, k] = end_piece
            if labels is not None and gold is not None:
                labels[pos, k] = gold[w, k]
    return ends.ravel().tolist(), (labels.ravel().tolist() if labels is not None else None)


def crosses(a: Span | ScoredSpan, b: Span | ScoredSpan) -> bool:
    """Whether two spans overlap without one holding the other."""
    overlap = a.start < b.end and b.start < a.end
    nested = (a.start <= b.start and b.end <= a.end) or (b.start <= a.start and a.end <= b.end)
    return overlap and not nested


def choose_spans(candidates: Iterable[ScoredSpan], keep_crossing: bool = False) -> list[ScoredSpan]:
    """The spans kept of the candidates of one sentence (see the module docstring), sorted by start, longest first.

    >>> kept = choose_spans([ScoredSpan(0, 3, "ORG", .9), ScoredSpan(0, 1, "LOC", .8), ScoredSpan(2, 4, "PER", .7)])
    >>> [(s.start, s.end, s.label) for s in kept]
    [(0, 3, 'ORG'), (0, 1, 'LOC')]
    """
    kept: list[ScoredSpan] = []
    seen: set[tuple[int, int]] = set()
    for cand in sorted(candidates, key=lambda s: (-s.score, s.start, s.end, s.label)):
        if (cand.start, cand.end) in seen:
            continue
        if not keep_crossing and any(crosses(cand, k) for k in kept):
            continue
        kept.append(cand)
        seen.add((cand.start, cand.end))
    return sorted(kept, key=lambda s: (s.start, -s.end, s.label))


def window_candidates(
    probs: np.ndarray, words: Sequence[int], window_end: int, n_words: int, types: Sequence[str]
) -> tuple[list[ScoredSpan], np.ndarray]:
    """Candidates of one window from the span probabilities of its owned words (``probs[i]``: ``(width, types+1)``
    of the spans starting at ``words[i]``), and each owned word's probability of starting no one-word entity."""
    width = probs.shape[1]
    starts = np.asarray(words, dtype=np.int64)
    best = probs.argmax(axis=-1)  # (words, width)
    room = np.minimum(window_end - starts, n_words - starts)  # widths that stay in the window and the sentence
    valid = (np.arange(width)[None, :] < room[:, None]) & (best != NONE_ID)
    rows, ks = np.nonzero(valid)
    scores = probs[rows, ks, best[rows, ks]]
    out = [
        ScoredSpan(int(starts[r]), int(starts[r]) + int(k) + 1, types[int(best[r, k]) - 1], float(p))
        for r, k, p in zip(rows, ks, scores, strict=True)
    ]
    return out, probs[:, 0, NONE_ID]
