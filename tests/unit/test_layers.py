"""Overlapping spans (issue 28): the flat view, depths and the nesting report, as properties over random span sets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nerforge.data.layers import depths, entity_spans, flatten, holds, is_flat, layer_names, overlap_stats, overlaps
from nerforge.types import Example, Span


@st.composite
def span_sets(draw: st.DrawFn, layers: tuple[str, ...] = ("",)) -> list[Span]:
    n = draw(st.integers(0, 8))
    out = []
    for _ in range(n):
        start = draw(st.integers(0, 11))
        end = draw(st.integers(start + 1, 12))
        out.append(Span(start, end, draw(st.sampled_from(["A", "B", "C"])), draw(st.sampled_from(layers))))
    return out


@given(span_sets())
def test_flatten_keeps_a_flat_subset_that_covers_every_dropped_span(spans: list[Span]) -> None:
    kept = flatten(spans)
    assert is_flat(kept) and set(kept) <= set(spans) and kept == sorted(kept)
    for span in set(spans) - set(kept):
        assert any(overlaps(span, k) for k in kept)  # dropped only for a kept span it shares a token with


@given(span_sets())
def test_flatten_keeps_every_outermost_span_that_crosses_nothing(spans: list[Span]) -> None:
    kept = set(flatten(spans))
    for span in spans:
        others = [o for o in spans if o != span]
        outermost = not any(holds(o, span) and (o.start, o.end) != (span.start, span.end) for o in others)
        crosses = any(overlaps(o, span) and not holds(o, span) and not holds(span, o) for o in others)
        same_range = any((o.start, o.end) == (span.start, span.end) for o in others)
        if outermost and not crosses and not same_range:
            assert span in kept


@given(span_sets())
def test_a_flat_set_has_depth_zero_and_flattens_to_itself(spans: list[Span]) -> None:
    flat = flatten(spans)
    assert depths(flat) == [0] * len(flat) and flatten(flat) == flat


def test_nesting_report_counts_depth_pairs_crossing_and_layers() -> None:
    # [[Bonn]LOC -er Universität]ORG, a crossing pair, and a span of another layer over "Universität"
    nested = [Span(0, 3, "ORG"), Span(0, 1, "LOC"), Span(0, 1, "X")]
    crossing = [Span(0, 2, "A"), Span(1, 3, "B")]
    layered = [Span(0, 2, "SKILL", "skill"), Span(1, 2, "KNOW", "knowledge")]  # nested across layers
    stats = overlap_stats([nested, crossing, layered, [Span(0, 1, "A")]])
    assert stats.spans == 8 and stats.layers == {"": 6, "skill": 1, "knowledge": 1}
    assert stats.max_depth == 2 and stats.nested == 2  # LOC inside ORG; X inside both (same range as LOC)
    assert stats.nested_pairs[("ORG", "LOC")] == 1 and stats.nested_pairs[("ORG", "X")] == 1
    assert stats.nested_pairs[("SKILL", "KNOW")] == 1
    assert stats.crossing == 1 and stats.across_layers == 1 and stats.examples_with_overlap == 3 and not stats.flat


def test_an_example_without_spans_has_the_spans_of_its_tags() -> None:
    ex = Example(("Bonn", "-er", "Uni"), ("B-ORG", "I-ORG", "I-ORG"))
    assert entity_spans(ex) == (Span(0, 3, "ORG"),) and layer_names(entity_spans(ex)) == ("",)
    nested = Example(ex.tokens, ex.tags, spans=(Span(0, 3, "ORG", "outer"), Span(0, 1, "LOC", "inner")))
    assert layer_names(entity_spans(nested)) == ("outer", "inner")
    assert repr(Span(0, 1, "LOC")) == "Span(start=0, end=1, label='LOC')"


@given(st.lists(st.integers(2, 7), min_size=2, max_size=4).flatmap(
    lambda sizes: st.tuples(st.just(sizes), st.lists(st.tuples(*(st.integers(0, n - 1) for n in sizes)), min_size=1,
                                                     max_size=6))))  # fmt: skip
def test_a_layered_label_holds_every_layers_tag_id(case: tuple[list[int], list[tuple[int, ...]]]) -> None:
    import torch

    from nerforge.modeling.layered import combine_ids, split_ids

    sizes, words = case
    labels = torch.tensor([[combine_ids(list(w), sizes) for w in words] + [-100]])  # an ignored position at the end
    for layer, ids in enumerate(split_ids(labels, sizes)):
        assert ids[0, :-1].tolist() == [w[layer] for w in words] and ids[0, -1].item() == -100
