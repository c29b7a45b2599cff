"""Windows over long sequences: every word owned once, windows within budget, nothing dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nerforge.alignment import (
    IGNORE_INDEX,
    SpecialTokens,
    Window,
    encode_window,
    fill_empty_words,
    plan_windows,
    windows_for,
)


@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), max_size=60),
    budget=st.integers(min_value=1, max_value=20),
    stride=st.integers(min_value=0, max_value=10),
)
def test_alignment_windows_cover_and_own_each_word_once(counts: list[int], budget: int, stride: int) -> None:
    plan = plan_windows(counts, budget, stride)
    owned = [w for (_, _, a, b) in plan for w in range(a, b)]
    assert owned == list(range(len(counts)))
    for s, e, a, b in plan:
        assert s <= a <= b <= e or (a == b)
        assert sum(min(c, budget) for c in counts[s:e]) <= budget or e - s == 1
    starts = [s for s, *_ in plan]
    ends = [e for _, e, *_ in plan]
    assert starts == sorted(starts) and ends == sorted(ends)
    assert len(set(ends)) == len(ends)  # every window adds new words


def test_alignment_single_window_when_it_fits() -> None:
    assert plan_windows([2, 3, 1], 6, 2) == [(0, 3, 0, 3)]
    assert plan_windows([], 6, 2) == [(0, 0, 0, 0)]


def test_alignment_encode_labels_first_piece_of_owned_words() -> None:
    specials = SpecialTokens((101,), (102,))
    words = [[5], [6, 7], [], [8]]
    win = Window(0, 0, 4, 1, 4)
    enc = encode_window(win, words, specials, max_length=10, label_ids=[1, 2, 0, 3])
    assert enc.input_ids == [101, 5, 6, 7, 8, 102]
    assert enc.labels == [IGNORE_INDEX, IGNORE_INDEX, 2, IGNORE_INDEX, 3, IGNORE_INDEX]
    assert enc.first_piece_of == {1: 2, 3: 4}
    enc_all = encode_window(win, words, specials, 10, label_ids=[1, 2, 0, 3], continuation_ids=[1, 9, 0, 3])
    assert enc_all.labels == [IGNORE_INDEX, IGNORE_INDEX, 2, 9, 3, IGNORE_INDEX]


def test_alignment_giant_word_is_clipped_and_counted() -> None:
    specials = SpecialTokens((101,), (102,))
    pieces = [[[1] * 50, [2], [3]]]
    windows, stats = windows_for(pieces, max_length=10, stride=2, specials=specials)
    assert stats.long_words == 1
    assert sorted(w for win in windows for w in range(win.own_start, win.own_end)) == [0, 1, 2]
    for win in windows:
        enc = encode_window(win, pieces[0], specials, 10)
        assert len(enc.input_ids) <= 10


def test_alignment_fill_empty_words() -> None:
    assert fill_empty_words(["B-X", "", "I-X"]) == ["B-X", "I-X", "I-X"]
    assert fill_empty_words(["B-X", "", "O"]) == ["B-X", "O", "O"]
    assert fill_empty_words(["", "B-X"]) == ["O", "B-X"]


def test_a_text_longer_than_the_encoder_takes_raises_no_tokenizer_warning(tiny_encoder) -> None:
    """Texts longer than the encoder's maximum are cut into windows after tokenizing; the tokenizer's warning that
    such a sequence "will result in indexing errors" is wrong for us and is not emitted (reading, data reports)."""
    import logging

    from transformers import AutoTokenizer

    from nerforge.alignment import word_pieces
    from nerforge.evaluation.data_report import FileData
    from nerforge.types import Example

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("transformers.tokenization_utils_base")
    logger.addHandler(handler)
    try:
        words = tuple(f"word{i}" for i in range(40))
        tokenizer = AutoTokenizer.from_pretrained(tiny_encoder, model_max_length=16)
        pieces = word_pieces(tokenizer, [words])
        assert sum(len(p) for p in pieces[0]) > 16  # longer than the maximum: the warning's case
        report_tokenizer = AutoTokenizer.from_pretrained(tiny_encoder, model_max_length=16)
        FileData.from_examples("long", [Example(words, ("O",) * len(words))], report_tokenizer)
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "sequence length is longer" in r.getMessage()]
