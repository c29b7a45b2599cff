"""Words <-> subwords, and windows over sequences longer than the model's maximum.

Pure functions over subword counts plus two thin helpers that ask a Hugging Face fast tokenizer for pieces.
Nothing is ever truncated silently: a sequence longer than the model's maximum is split into overlapping windows,
each word is *owned* by exactly one window (the one where it has the most context), and only that window labels
it in training and predicts it at inference. A single word longer than a whole window keeps its first pieces and
is counted in :class:`WindowStats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nerforge.data.schemes import may_follow
from nerforge.tags import Role, parse_tag

IGNORE_INDEX = -100


@dataclass(frozen=True)
class SpecialTokens:
    """Ids the tokenizer puts before and after a sequence (``[CLS]`` / ``[SEP]``, ``<s>`` / ``</s>``)."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.prefix) + len(self.suffix)


@dataclass(frozen=True)
class Window:
    """Words ``[start, end)`` of one example fed to the model together; it labels/predicts ``[own_start, own_end)``."""

    example: int
    start: int
    end: int
    own_start: int
    own_end: int


@dataclass
class WindowStats:
    """What windowing did to a split, for reporting."""

    examples: int = 0
    windowed_examples: int = 0  # examples that needed more than one window
    windows: int = 0
    long_words: int = 0  # words with more pieces than fit in one window; their extra pieces are dropped
    empty_words: int = 0  # words the tokenizer maps to no piece; they take their label from their neighbours
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, other: WindowStats) -> None:
        self.examples += other.examples
        self.windowed_examples += other.windowed_examples
        self.windows += other.windows
        self.long_words += other.long_words
        self.empty_words += other.empty_words


def special_tokens(tokenizer: Any) -> SpecialTokens:
    """Find the ids a tokenizer adds around a sequence by encoding one word with and without them."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return SpecialTokens(tuple(full[:i]), tuple(full[i + len(bare) :]))
    return SpecialTokens((), ())


def word_pieces(tokenizer: Any, batch: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Subword ids of every word of every example (a word may get none, e.g. U+001A or a lone space)."""
    if not batch:
        return []
    # verbose=False: a text longer than the encoder's maximum is cut into windows afterwards, so the tokenizer's
    # warning that running it through the model "will result in indexing errors" is wrong here and alarms users
    enc = tokenizer([list(words) for words in batch], is_split_into_words=True, add_special_tokens=False, verbose=False)
    out: list[list[list[int]]] = []
    for i, words in enumerate(batch):
        pieces: list[list[int]] = [[] for _ in words]
        for piece_id, word_id in zip(enc["input_ids"][i], enc.word_ids(i), strict=True):
            if word_id is not None:
                pieces[word_id].append(piece_id)
        out.append(pieces)
    return out


def plan_windows(counts: Sequence[int], max_pieces: int, stride: int) -> list[tuple[int, int, int, int]]:
    """Split words with ``counts`` pieces each into windows of at most ``max_pieces`` pieces.

    Consecutive windows overlap by at most ``stride`` pieces; the overlap is shared at its middle word, so every
    word is owned by exactly one window. Returns ``(start, end, own_start, own_end)`` tuples covering all words.

    >>> plan_windows([1, 1, 1, 1], max_pieces=2, stride=0)
    [(0, 2, 0, 2), (2, 4, 2, 4)]
    """
    if max_pieces < 1:
        raise ValueError("max_pieces must be at least 1")
    stride = max(0, min(stride, max_pieces - 1))
    n = len(counts)
    if n == 0:
        return [(0, 0, 0, 0)]
    clipped = [min(c, max_pieces) for c in counts]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, total = start, 0
        while end < n and total + clipped[end] <= max_pieces:
            total += clipped[end]
            end += 1
        end = max(end, start + 1)
        spans.append((start, end))
        if end >= n:
            break
        # next start: the earliest word such that the overlap [next, end) holds at most `stride` pieces
        nxt, overlap = end, 0
        while nxt - 1 > start and overlap + clipped[nxt - 1] <= stride:
            nxt -= 1
            overlap += clipped[nxt]
        # the next window must reach past `end`, or it would add nothing
        while nxt < end and sum(clipped[nxt : end + 1]) > max_pieces:
            nxt += 1
        start = nxt
    out: list[tuple[int, int, int, int]] = []
    own_start = 0
    for k, (s, e) in enumerate(spans):
        if k + 1 < len(spans):
            ns = spans[k + 1][0]
            own_end = (ns + e + 1) // 2 if ns < e else e
        else:
            own_end = n
        out.append((s, e, own_start, own_end))
        own_start = own_end
    return out


def windows_for(
    pieces: Sequence[Sequence[Sequence[int]]], max_length: int, stride: int, specials: SpecialTokens
) -> tuple[list[Window], WindowStats]:
    """Windows for a batch of examples given their word pieces and the model's maximum length (with specials)."""
    budget = max_length - specials.count
    stats = WindowStats()
    windows: list[Window] = []
    for ex, words in enumerate(pieces):
        counts = [len(p) for p in words]
        stats.examples += 1
        stats.long_words += sum(1 for c in counts if c > budget)
        stats.empty_words += sum(1 for c in counts if c == 0)
        plan = plan_windows(counts, budget, stride)
        if len(plan) > 1:
            stats.windowed_examples += 1
        stats.windows += len(plan)
        windows.extend(Window(ex, *p) for p in plan)
    return windows, stats


@dataclass(frozen=True)
class EncodedWindow:
    """Model inputs of one window and, for each position, the word it belongs to (``None``: special/not owned)."""

    window: Window
    input_ids: list[int]
    first_piece_of: dict[int, int]  # owned word index -> position of its first piece
    labels: list[int] | None
    piece_of: dict[int, int] | None = None  # every word with a piece, owned or not -> its first piece (when asked)


def encode_window(
    window: Window,
    words: Sequence[Sequence[int]],
    specials: SpecialTokens,
    max_length: int,
    label_ids: Sequence[int] | None = None,
    continuation_ids: Sequence[int] | None = None,
    every_word: bool = False,
) -> EncodedWindow:
    """Build ``input_ids`` (and ``labels``) for one window.

    ``label_ids`` gives each word's label id; only owned words are labelled, on their first piece. With
    ``continuation_ids`` (the label of each word's later pieces, ``B-X`` turned into ``I-X``), the later pieces are
    labelled too; otherwise they get :data:`IGNORE_INDEX`. ``every_word`` also records the first piece of every
    word of the window, owned or not (``piece_of``: where the span head's spans may end).
    """
    budget = max_length - specials.count
    ids: list[int] = list(specials.prefix)
    labels: list[int] | None = [IGNORE_INDEX] * len(specials.prefix) if label_ids is not None else None
    first: dict[int, int] = {}
    every: dict[int, int] | None = {} if every_word else None
    for w in range(window.start, window.end):
        piece_list = list(words[w])[: max(0, budget - (len(ids) - len(specials.prefix)))]
        owned = window.own_start <= w < window.own_end
        if owned and piece_list:
            first[w] = len(ids)
        if every is not None and piece_list:
            every[w] = len(ids)
        ids.extend(piece_list)
        if labels is not None:
            for k in range(len(piece_list)):
                if not owned:
                    labels.append(IGNORE_INDEX)
                elif k == 0:
                    labels.append(label_ids[w])  # type: ignore[index]
                elif continuation_ids is not None:
                    labels.append(continuation_ids[w])
                else:
                    labels.append(IGNORE_INDEX)
    ids.extend(specials.suffix)
    if labels is not None:
        labels.extend([IGNORE_INDEX] * len(specials.suffix))
    return EncodedWindow(window, ids, first, labels, every)


def fill_empty_words(tags: list[str]) -> list[str]:
    """Tags of words that got no piece are ``None``-like (``""``); give them a tag from their neighbours.

    An empty word inside an entity (previous word tagged ``B-X``/``I-X`` and next ``I-X``) continues it;
    otherwise it is ``O``.
    """
    out = list(tags)
    for i, t in enumerate(out):
        if t:
            continue
        prev = out[i - 1] if i > 0 else "O"
        nxt = next((x for x in tags[i + 1 :] if x), "O")
        out[i] = nxt if parse_tag(nxt).role is Role.INSIDE and may_follow(prev, nxt) else "O"
    return out
