"""Span-level scores of overlapping entities (issue 28, item 4): per layer, by depth, and the same numbers as the flat
scorer on flat data. A scorer that counted an inner entity as a miss of its outer one fails here."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nerforge.data.schemes import tags_to_spans
from nerforge.evaluation.metrics import evaluate
from nerforge.evaluation.nested import score_layered
from nerforge.types import Span

TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


@st.composite
def tag_pairs(draw: st.DrawFn) -> tuple[list[list[str]], list[list[str]]]:
    lengths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=5))
    gold = [draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    from nerforge.data.schemes import convert_tags

    return [convert_tags(g, "iob2") for g in gold], [convert_tags(p, "iob2") for p in pred]


@given(tag_pairs())
def test_flat_data_scores_as_the_flat_scorer(pair: tuple[list[list[str]], list[list[str]]]) -> None:
    gold, pred = pair
    flat = evaluate(gold, pred)
    layered = score_layered([tags_to_spans(g) for g in gold], [tags_to_spans(p) for p in pred])
    assert (layered.micro.tp, layered.micro.n_pred, layered.micro.support) == (
        flat.micro.tp,
        flat.micro.n_pred,
        flat.micro.support,
    )
    assert layered.micro.f1 == flat.micro.f1
    assert layered.per_layer_type.get("", {}) == flat.per_type
    assert layered.by_depth["inner"].support == 0  # flat data has no inner entities


def test_an_inner_entity_is_scored_on_its_own() -> None:
    gold = [[Span(0, 3, "ORG"), Span(0, 1, "LOC")]]  # [[Bonn]LOC -er Universität]ORG
    outer_only = score_layered(gold, [[Span(0, 3, "ORG")]])
    assert (outer_only.micro.tp, outer_only.micro.fp, outer_only.micro.fn) == (1, 0, 1)
    assert outer_only.by_depth["outer"].f1 == 1.0 and outer_only.by_depth["inner"].recall == 0.0
    both = score_layered(gold, [[Span(0, 1, "LOC"), Span(0, 3, "ORG")]])
    assert both.micro.f1 == 1.0 and both.by_depth["inner"].f1 == 1.0
    inner_only = score_layered(gold, [[Span(0, 1, "LOC")]])  # predicted alone, LOC is outer on its side
    assert inner_only.micro.tp == 1 and inner_only.by_depth["inner"].recall == 0.0
    assert inner_only.by_depth["outer"].fp == 1


def test_layers_are_scored_apart() -> None:
    gold = [[Span(0, 6, "Skill", "skill"), Span(3, 5, "Knowledge", "knowledge")]]
    pred = [[Span(0, 6, "Skill", "skill"), Span(3, 5, "Knowledge", "skill")]]  # right words, wrong layer
    result = score_layered(gold, pred)
    assert result.per_layer["skill"].tp == 1 and result.per_layer["skill"].fp == 1
    assert result.per_layer["knowledge"].fn == 1 and result.micro.f1 == 0.5
    assert set(result.per_layer_type["knowledge"]) == {"Knowledge"}
