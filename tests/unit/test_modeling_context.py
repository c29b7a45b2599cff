"""Document context: neighbours per document, centre-only labels, context never owned, long sentences unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nerforge.alignment import IGNORE_INDEX, SpecialTokens, Window, encode_window, plan_windows
from nerforge.modeling.context import SentenceContext, context_room, encode_in_context, sentence_contexts

SPECIALS = SpecialTokens((101,), (102,))


def test_sentence_contexts_stay_inside_documents() -> None:
    sents = [["a"], ["b"], ["c"], ["d"], ["e"], ["f"]]
    docs = ["1", "1", "1", "2", "2", None]
    ctx = sentence_contexts(sents, docs, 1)
    assert ctx[0] == SentenceContext((), ("b",))
    assert ctx[1] == SentenceContext(("a",), ("c",))
    assert ctx[2] == SentenceContext(("b",), ())  # "d" is another document
    assert ctx[3] == SentenceContext((), ("e",))
    assert ctx[5] == SentenceContext()  # no doc id: no context
    two = sentence_contexts(sents, docs, 2)
    assert two[2] == SentenceContext(("a", "b"), ())
    assert sentence_contexts(sents, docs, 0) == [SentenceContext()] * 6


def test_context_room_takes_nearest_whole_words_and_shares_leftovers() -> None:
    left = [[1], [2, 2], [3]]  # nearest is [3]
    right = [[4], [5, 5, 5]]
    assert context_room(used=2, budget=6, left=left, right=right) == (
        2,
        1,
    )  # room 4: left 1 word, right 1, left takes the rest
    assert context_room(used=2, budget=4, left=left, right=right) == (1, 1)
    assert context_room(used=2, budget=12, left=left, right=right) == (3, 2)
    assert context_room(used=2, budget=6, left=left, right=[]) == (3, 0)
    assert context_room(used=6, budget=6, left=left, right=right) == (0, 0)


def test_centre_sentence_alone_is_labelled() -> None:
    pieces = [[10], [11, 12], [13]]
    window = Window(0, 0, 3, 0, 3)
    enc = encode_in_context(window, pieces, [[1], [2]], [[3]], SPECIALS, 16, [1, 2, 0], None)
    assert enc.input_ids == [101, 1, 2, 10, 11, 12, 13, 3, 102]
    assert enc.labels == [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 1, 2, IGNORE_INDEX, 0, IGNORE_INDEX, IGNORE_INDEX]
    assert enc.first_piece_of == {0: 3, 1: 4, 2: 6}  # sentence words only, in sentence coordinates
    assert enc.window == window


@given(
    counts=st.lists(st.integers(0, 4), min_size=1, max_size=30),
    left=st.lists(st.integers(0, 3), max_size=10),
    right=st.lists(st.integers(0, 3), max_size=10),
    max_length=st.integers(4, 24),
    stride=st.integers(0, 6),
)
def test_context_never_changes_the_sentence_windows(
    counts: list[int], left: list[int], right: list[int], max_length: int, stride: int
) -> None:
    budget = max_length - SPECIALS.count
    piece = iter(range(1000, 100000))
    pieces = [[next(piece) for _ in range(c)] for c in counts]
    lp = [[next(piece) for _ in range(c)] for c in left]
    rp = [[next(piece) for _ in range(c)] for c in right]
    labels = list(range(len(counts)))
    for plan in plan_windows(counts, budget, stride):
        window = Window(0, *plan)
        plain = encode_window(window, pieces, SPECIALS, max_length, labels)
        ctx = encode_in_context(window, pieces, lp, rp, SPECIALS, max_length, labels)
        assert len(ctx.input_ids) <= max_length
        assert ctx.first_piece_of.keys() == plain.first_piece_of.keys()
        # the same labels at the same words, and nothing else labelled
        got = {w: ctx.labels[p] for w, p in ctx.first_piece_of.items()}
        assert got == {w: plain.labels[p] for w, p in plain.first_piece_of.items()}
        assert sum(label != IGNORE_INDEX for label in ctx.labels) == sum(
            label != IGNORE_INDEX for label in plain.labels
        )
        # the sentence's pieces appear unchanged, in one block; context pieces only outside it
        inner = plain.input_ids[1:-1]
        ids = ctx.input_ids[1:-1]
        at = next((i for i in range(len(ids) - len(inner) + 1) if ids[i : i + len(inner)] == inner), None)
        assert at is not None
        context_ids = {p for w in lp + rp for p in w}
        assert all(p in context_ids for p in ids[:at] + ids[at + len(inner) :])
        # every word's first piece (the span head's ends): the owned ones among them, in sentence coordinates,
        # where the encoding that owns every word of the window puts them, and no context word
        every = encode_in_context(window, pieces, lp, rp, SPECIALS, max_length, labels, every_word=True)
        owning_all = encode_in_context(Window(0, window.start, window.end, window.start, window.end), pieces, lp, rp,
                                       SPECIALS, max_length)  # fmt: skip
        assert every.piece_of == owning_all.first_piece_of and every.input_ids == ctx.input_ids
        assert every.first_piece_of == ctx.first_piece_of and every.first_piece_of.items() <= every.piece_of.items()
        assert ctx.piece_of is None
        if window.start > 0:
            assert at == 0  # left context only next to the sentence's start
        if window.end < len(counts):
            assert at + len(inner) == len(ids)
