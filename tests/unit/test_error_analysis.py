"""Error analysis: each category on hand-worked sentences, examples, ordering, and invariants against the metrics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.data.schemes import strict_tags_to_spans
from nerforge.errors import LengthMismatchError, UsageError
from nerforge.evaluation import analyse_errors, evaluate
from nerforge.evaluation.errors_analysis import CATEGORIES, SpanText, classify_spans
from nerforge.types import Span

# One sentence per category, plus a split and a merge; tokens make the example texts checkable.
TOKENS = [
    ["Ada", "Lovelace", "wrote", "."],  # 0 exact PER
    ["Acme", "Corp", "hired", "Bob"],  # 1 type: gold ORG[0,2), pred PER[0,2); missed PER Bob
    ["in", "New", "York", "City"],  # 2 boundary: gold LOC[1,4), pred LOC[2,4)
    ["Paris", "Hilton", "sang"],  # 3 boundary_type: gold PER[0,2), pred LOC[0,1)
    ["the", "end"],  # 4 spurious: pred ORG[1,2)
    ["Rio", "de", "Janeiro"],  # 5 split: gold LOC[0,3), pred LOC[0,1) + LOC[1,3)
]
GOLD = [
    ["B-PER", "I-PER", "O", "O"],
    ["B-ORG", "I-ORG", "O", "B-PER"],
    ["O", "B-LOC", "I-LOC", "I-LOC"],
    ["B-PER", "I-PER", "O"],
    ["O", "O"],
    ["B-LOC", "I-LOC", "I-LOC"],
]
PRED = [
    ["B-PER", "I-PER", "O", "O"],
    ["B-PER", "I-PER", "O", "O"],
    ["O", "O", "B-LOC", "I-LOC"],
    ["B-LOC", "O", "O"],
    ["O", "B-ORG"],
    ["B-LOC", "B-LOC", "I-LOC"],
]


@pytest.fixture(scope="module")
def analysis():
    return analyse_errors(GOLD, PRED, TOKENS, max_examples=5)


def test_error_analysis_counts_each_category(analysis):
    assert analysis.counts == {
        "exact": 1,
        "type": 1,
        "boundary": 3,  # sentence 2 once, sentence 5 twice (a split gold span gives two pairs)
        "boundary_type": 1,
        "missed": 1,
        "spurious": 1,
    }
    assert analysis.n_gold == 6 and analysis.n_pred == 7
    assert analysis.n_errors == 7


def test_error_analysis_per_type_and_confusions(analysis):
    assert list(analysis.per_type) == ["LOC", "ORG", "PER"]
    assert analysis.per_type["PER"] == {
        "exact": 1,
        "type": 0,
        "boundary": 0,
        "boundary_type": 1,
        "missed": 1,
        "spurious": 0,
    }
    assert analysis.per_type["ORG"] == {
        "exact": 0,
        "type": 1,
        "boundary": 0,
        "boundary_type": 0,
        "missed": 0,
        "spurious": 1,
    }
    assert analysis.per_type["LOC"]["boundary"] == 3
    assert sum(analysis.per_type["LOC"].values()) == 3
    # Most frequent first, then alphabetical.
    assert analysis.type_confusions == (("ORG", "PER", 1), ("PER", "LOC", 1))


def test_error_analysis_examples_carry_text_and_labels(analysis):
    (case,) = analysis.examples["type"]
    assert (case.sentence, case.tokens) == (1, ("Acme", "Corp", "hired", "Bob"))
    assert case.gold == SpanText(0, 2, "ORG", "Acme Corp")
    assert case.pred == SpanText(0, 2, "PER", "Acme Corp")
    (missed,) = analysis.examples["missed"]
    assert missed.gold == SpanText(3, 4, "PER", "Bob") and missed.pred is None
    (spurious,) = analysis.examples["spurious"]
    assert spurious.gold is None and spurious.pred == SpanText(1, 2, "ORG", "end")
    (bt,) = analysis.examples["boundary_type"]
    assert (bt.gold.text, bt.gold.label, bt.pred.text, bt.pred.label) == ("Paris Hilton", "PER", "Paris", "LOC")
    # Document order: sentence 2 first, then the two halves of the split in sentence 5, left to right.
    boundary = analysis.examples["boundary"]
    assert [(c.sentence, c.gold.text, c.pred.text) for c in boundary] == [
        (2, "New York City", "York City"),
        (5, "Rio de Janeiro", "Rio"),
        (5, "Rio de Janeiro", "de Janeiro"),
    ]
    d = analysis.to_dict()
    assert d["counts"]["boundary"] == 3
    assert d["examples"]["missed"][0]["gold"] == {"start": 3, "end": 4, "label": "PER", "text": "Bob"}
    assert "examples" not in analysis.to_dict(include_examples=False)


def test_error_analysis_exact_count_equals_metrics_true_positives(analysis):
    assert analysis.counts["exact"] == evaluate(GOLD, PRED).micro.tp


def test_error_analysis_caps_examples_and_is_deterministic():
    a = analyse_errors(GOLD, PRED, TOKENS, max_examples=1)
    assert [c.pred.text for c in a.examples["boundary"]] == ["York City"]
    assert a.counts["boundary"] == 3  # counts are not capped
    assert analyse_errors(GOLD, PRED, TOKENS, max_examples=1) == a
    assert all(len(v) == 0 for v in analyse_errors(GOLD, PRED, max_examples=0).examples.values())


def test_error_analysis_without_tokens_has_no_text():
    a = analyse_errors(GOLD, PRED)
    (case,) = a.examples["missed"]
    assert case.tokens is None and case.gold == SpanText(3, 4, "PER", None)


def test_error_analysis_merge_gives_one_pair_per_gold_span():
    a = analyse_errors([["B-PER", "B-PER", "O"]], [["B-PER", "I-PER", "O"]])
    assert a.counts["boundary"] == 2 and a.counts["missed"] == 0 and a.counts["spurious"] == 0


def test_error_analysis_input_checks():
    with pytest.raises(LengthMismatchError, match="sentence 0: 2 gold tags but 1 predicted"):
        analyse_errors([["O", "O"]], [["O"]])
    with pytest.raises(LengthMismatchError, match="sentence 0"):
        analyse_errors([["O", "O"]], [["O", "O"]], [["a"]])
    with pytest.raises(UsageError, match="max_examples"):
        analyse_errors([["O"]], [["O"]], max_examples=-1)


# --- invariants on random sentences --------------------------------------------------------------------------

TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from(TAGS)), max_size=12))
def test_classify_spans_accounts_for_every_span(pairs):
    gold_tags = [g for g, _ in pairs]
    pred_tags = [p for _, p in pairs]
    gold, pred = strict_tags_to_spans(gold_tags), strict_tags_to_spans(pred_tags)
    cases = classify_spans(gold, pred)
    in_pair_g = {g for c, g, p in cases if g is not None and p is not None}
    in_pair_p = {p for c, g, p in cases if g is not None and p is not None}
    missed = [g for c, g, _ in cases if c == "missed"]
    spurious = [p for c, _, p in cases if c == "spurious"]
    assert sorted(missed + list(in_pair_g)) == sorted(gold)  # every gold span: missed xor in a pair
    assert sorted(spurious + list(in_pair_p)) == sorted(pred)
    for c, g, p in cases:
        assert c in CATEGORIES
        if g is not None and p is not None:
            assert g.start < p.end and p.start < g.end
            assert (c in ("exact", "type")) == ((g.start, g.end) == (p.start, p.end))
            assert (c in ("exact", "boundary")) == (g.label == p.label)
    assert sum(c == "exact" for c, _, _ in cases) == evaluate([gold_tags], [pred_tags]).micro.tp
    # Sorted by position: non-decreasing first start.
    starts = [min(s.start for s in (g, p) if s is not None) for _, g, p in cases]
    assert starts == sorted(starts)


def test_classify_spans_direct():
    assert classify_spans([Span(0, 2, "A")], [Span(0, 2, "B")]) == [("type", Span(0, 2, "A"), Span(0, 2, "B"))]
    assert classify_spans([], []) == []
