"""The span head's pure parts (issue 28, item 3): gold tables, the window's span ends, the choice of spans kept, the
collator's padding of per-position rows, and the head's settings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.alignment import IGNORE_INDEX, SpecialTokens, Window, encode_window
from nerforge.modeling.head import HeadSpec, head_preset
from nerforge.modeling.span import NONE_ID, ScoredSpan, choose_spans, crosses, gold_table, window_rows
from nerforge.types import Span


def test_gold_table_marks_each_span_at_its_start_and_width() -> None:
    table, too_long, same = gold_table([Span(0, 3, "ORG"), Span(0, 1, "LOC"), Span(4, 5, "LOC")], 6, ("LOC", "ORG"), 3)
    assert table.shape == (6, 3)
    assert table[0, 2] == 2 and table[0, 0] == 1 and table[4, 0] == 1
    assert int((table != NONE_ID).sum()) == 3 and too_long == 0 and same == 0


def test_gold_table_counts_the_spans_it_leaves_out() -> None:
    table, too_long, same = gold_table([Span(0, 4, "ORG"), Span(1, 2, "LOC"), Span(1, 2, "ORG")], 5, ("LOC", "ORG"), 3)
    assert too_long == 1 and same == 1 and int((table != NONE_ID).sum()) == 1  # one class per span: LOC, ORG counted


def test_window_rows_point_at_the_last_piece_of_each_end_word() -> None:
    # words of 1, 2 and 1 pieces after [CLS]: positions 1 | 2 3 | 4
    pieces = [[10], [11, 12], [13]]
    specials = SpecialTokens((101,), (102,))
    window = Window(0, 0, 3, 0, 3)
    enc = encode_window(window, pieces, specials, 16)
    gold, _, _ = gold_table([Span(0, 2, "X"), Span(1, 2, "X")], 3, ("X",), 3)
    ends, labels = window_rows(enc.first_piece_of, enc.first_piece_of, pieces, 3, len(enc.input_ids), 3, gold)
    rows = np.asarray(ends).reshape(-1, 3)
    assert rows[1].tolist() == [1, 3, 4]  # "w0", "w0 w1" (ends on w1's second piece), "w0 w1 w2"
    assert rows[2].tolist() == [3, 4, 0]  # the third width would pass the window's end
    lab = np.asarray(labels).reshape(-1, 3)
    assert lab[1].tolist() == [0, 1, 0] and lab[2].tolist() == [1, 0, IGNORE_INDEX]
    assert (lab[0] == IGNORE_INDEX).all() and (lab[3] == IGNORE_INDEX).all()  # [CLS] and a later piece


def test_window_rows_let_spans_end_in_words_the_window_does_not_own() -> None:
    pieces = [[10], [11], [12], [13]]
    specials = SpecialTokens((101,), (102,))
    window = Window(0, 0, 4, 0, 2)  # owns the first two words, sees four
    enc = encode_window(window, pieces, specials, 16)
    every = encode_window(window, pieces, specials, 16, every_word=True).piece_of
    assert every == encode_window(Window(0, 0, 4, 0, 4), pieces, specials, 16).first_piece_of
    ends, _ = window_rows(enc.first_piece_of, every, pieces, 4, len(enc.input_ids), 3, None)
    rows = np.asarray(ends).reshape(-1, 3)
    assert rows[2].tolist() == [2, 3, 4]  # the second word's spans reach into words 2 and 3
    assert not rows[3].any()  # the third word is not owned: no span starts there


spans = st.builds(
    lambda start, length, label, score: ScoredSpan(start, start + length, label, score),
    st.integers(0, 8),
    st.integers(1, 4),
    st.sampled_from(["A", "B"]),
    st.floats(0.0, 1.0),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(spans, max_size=12))
def test_kept_spans_never_cross_and_every_dropped_one_had_a_reason(candidates: list[ScoredSpan]) -> None:
    kept = choose_spans(candidates)
    assert all(k in candidates for k in kept)
    assert not any(crosses(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :])
    assert len({(k.start, k.end) for k in kept}) == len(kept)
    for cand in candidates:
        if cand not in kept:  # it crosses or repeats a kept span scored at least as high
            assert any((crosses(cand, k) or (k.start, k.end) == (cand.start, cand.end)) and k.score >= cand.score
                       for k in kept)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.lists(spans, max_size=12))
def test_keep_crossing_keeps_every_range_once(candidates: list[ScoredSpan]) -> None:
    kept = choose_spans(candidates, keep_crossing=True)
    assert {(k.start, k.end) for k in kept} == {(c.start, c.end) for c in candidates}


def test_nested_spans_are_kept_and_crossing_ones_dropped_by_score() -> None:
    kept = choose_spans([ScoredSpan(0, 3, "ORG", 0.9), ScoredSpan(0, 1, "LOC", 0.8), ScoredSpan(2, 5, "PER", 0.95)])
    assert [(k.start, k.end, k.label) for k in kept] == [(0, 1, "LOC"), (2, 5, "PER")]


def test_the_collator_pads_rows_of_several_values_per_position() -> None:
    from nerforge.training.collate import PaddingCollator

    batch = PaddingCollator(0)([
        {"input_ids": [1, 2], "labels": [0, 1, 2, 3], "span_ends": [1, 1, 2, 0]},
        {"input_ids": [1, 2, 3], "labels": [0] * 6, "span_ends": [1] * 6},
    ])  # fmt: skip
    assert tuple(batch["labels"].shape) == (2, 3, 2) and tuple(batch["span_ends"].shape) == (2, 3, 2)
    assert batch["labels"][0].tolist() == [[0, 1], [2, 3], [IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["span_ends"][0, 2].tolist() == [0, 0]


def test_the_span_head_is_a_named_head_and_refuses_what_it_cannot_do() -> None:
    spec = HeadSpec.model_validate(head_preset("span"))
    assert spec.span and spec.name == "span" and spec.custom_model and not spec.features
    with pytest.raises(ValueError, match="no CRF"):
        HeadSpec(span=True, crf=True)
    with pytest.raises(ValueError, match="options of the span head"):
        HeadSpec(max_width=3)
    with pytest.raises(ValueError, match="word tagger"):
        spec.check_training(label_all_subwords=False, class_weights="balanced")
    assert "span" not in HeadSpec(crf=True).to_dict()  # a tagger's saved form is unchanged
    assert head_preset("crf")["span"] is False  # --head crf after a config's span head is a tagger


@pytest.mark.parametrize(
    "name", ["nerforge.modeling.span", "nerforge.evaluation.nested", "nerforge.data.layers", "nerforge.prediction.io"]
)
def test_docstring_examples(name: str) -> None:
    """The examples in the docstrings (nested entities inline, span choice, span scores) are right."""
    import doctest
    import importlib

    failures, tried = doctest.testmod(importlib.import_module(name))
    assert tried > 0 and failures == 0
