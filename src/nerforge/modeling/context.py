"""Document context: neighbouring sentences of the same document inside a sentence's window, unlabelled.

A sentence's window becomes ``[left context][sentence][right context]``. The sentence itself is windowed exactly as
without context (:func:`nerforge.alignment.windows_for`); context only fills the room a window has left under
``max_length``: the words just before the sentence go into its first window, the words just after into its last, whole
words only, nearest first, the room split evenly between the two sides (a side that needs less gives the rest to the
other). Context words are never owned: they get no label in training and no prediction.

:func:`sentence_contexts` finds the neighbours (consecutive examples with the same ``doc_id``; none without one) and
:func:`encode_in_context` builds the windows; training (:func:`nerforge.training.dataset.build_split`) and prediction
(:mod:`nerforge.modeling.runtime`) both call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nerforge.alignment import EncodedWindow, SpecialTokens, Window, encode_window


@dataclass(frozen=True)
class SentenceContext:
    """The words of the neighbouring sentences of one sentence (each side in document order)."""

    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()


NO_CONTEXT = SentenceContext()


def sentence_contexts(
    sentences: Sequence[Sequence[str]], doc_ids: Sequence[str | None], n: int
) -> list[SentenceContext]:
    """Up to ``n`` sentences on each side of every sentence, within runs of consecutive equal, non-``None`` doc ids."""
    if len(sentences) != len(doc_ids):
        raise ValueError(f"{len(sentences)} sentences but {len(doc_ids)} doc ids")
    out: list[SentenceContext] = []
    for i, doc in enumerate(doc_ids):
        if doc is None or n <= 0:
            out.append(NO_CONTEXT)
            continue
        lo = i
        while lo > 0 and i - lo < n and doc_ids[lo - 1] == doc:
            lo -= 1
        hi = i
        while hi + 1 < len(doc_ids) and hi - i < n and doc_ids[hi + 1] == doc:
            hi += 1
        left = tuple(w for s in sentences[lo:i] for w in s)
        right = tuple(w for s in sentences[i + 1 : hi + 1] for w in s)
        out.append(SentenceContext(left, right))
    return out


def _take(pieces: Sequence[Sequence[int]], room: int) -> int:
    """How many whole words, from the start of ``pieces``, fit in ``room`` subwords."""
    used = count = 0
    for p in pieces:
        if used + len(p) > room:
            break
        used += len(p)
        count += 1
    return count


def context_room(
    used: int, budget: int, left: Sequence[Sequence[int]], right: Sequence[Sequence[int]]
) -> tuple[int, int]:
    """Numbers of left words (nearest first) and right words that fit beside ``used`` subwords in ``budget``."""
    room = max(0, budget - used)
    n_left = _take(list(reversed(left)), room // 2 if right else room)
    left_used = sum(len(p) for p in left[len(left) - n_left :])
    n_right = _take(right, room - left_used)
    right_used = sum(len(p) for p in right[:n_right])
    if n_left < len(left):  # the left side may use what the right side left over
        n_left = _take(list(reversed(left)), room - right_used)
    return n_left, n_right


def encode_in_context(
    window: Window,
    pieces: Sequence[Sequence[int]],
    left: Sequence[Sequence[int]],
    right: Sequence[Sequence[int]],
    specials: SpecialTokens,
    max_length: int,
    label_ids: Sequence[int] | None = None,
    continuation_ids: Sequence[int] | None = None,
    every_word: bool = False,
) -> EncodedWindow:
    """:func:`nerforge.alignment.encode_window` of a sentence window with context around it.

    ``pieces`` are the sentence's word pieces, ``left``/``right`` those of its context words. The result's window,
    ``first_piece_of`` and ``piece_of`` (``every_word``: the window's sentence words only) are in sentence
    coordinates, as without context.
    """
    budget = max_length - specials.count
    used = sum(min(len(p), budget) for p in pieces[window.start : window.end])
    use_left = left if window.start == 0 else ()
    use_right = right if window.end == len(pieces) else ()
    n_left, n_right = context_room(used, budget, use_left, use_right)
    if n_left == 0 and n_right == 0:
        return encode_window(window, pieces, specials, max_length, label_ids, continuation_ids, every_word)
    words = [*left[len(left) - n_left :], *pieces, *right[:n_right]]
    start = 0 if n_left else window.start
    end = window.end + n_left + n_right
    shifted = Window(window.example, start, end, window.own_start + n_left, window.own_end + n_left)
    pad_left, pad_right = [0] * n_left, [0] * n_right
    labels = [*pad_left, *label_ids, *pad_right] if label_ids is not None else None
    cont = [*pad_left, *continuation_ids, *pad_right] if continuation_ids is not None else None
    enc = encode_window(shifted, words, specials, max_length, labels, cont, every_word)
    first = {w - n_left: pos for w, pos in enc.first_piece_of.items()}
    every = None
    if enc.piece_of is not None:  # the sentence's words of the window, not the context's
        every = {w - n_left: pos for w, pos in enc.piece_of.items() if window.start <= w - n_left < window.end}
    return EncodedWindow(window, enc.input_ids, first, enc.labels, every)
