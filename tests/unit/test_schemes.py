"""Tag schemes: property tests (spans -> tags -> spans), seqeval agreement, validation, detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.data.schemes import (
    SCHEMES,
    convert_tags,
    detect_scheme,
    is_valid_tag,
    parse_tag,
    spans_to_tags,
    strict_tags_to_spans,
    tags_to_spans,
    validate_tags,
)
from nerforge.errors import TagSchemeError
from nerforge.types import Span

TYPES = ["PER", "LOC", "ORG"]


@st.composite
def span_layouts(draw, max_len: int = 30, allow_adjacent_same: bool = True):
    """Random non-overlapping spans over a random length."""
    length = draw(st.integers(min_value=0, max_value=max_len))
    spans: list[Span] = []
    i = 0
    while i < length:
        if draw(st.booleans()):
            size = draw(st.integers(min_value=1, max_value=min(5, length - i)))
            label = draw(st.sampled_from(TYPES))
            if not allow_adjacent_same and spans and spans[-1].end == i and spans[-1].label == label:
                i += 1
                continue
            spans.append(Span(i, i + size, label))
            i += size
        else:
            i += draw(st.integers(min_value=1, max_value=3))
    return length, spans


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "io"])
@given(layout=span_layouts())
def test_schemes_roundtrip_spans_tags_spans(scheme: str, layout) -> None:
    length, spans = layout
    tags = spans_to_tags(spans, length, scheme)
    assert len(tags) == length
    assert tags_to_spans(tags) == spans
    assert validate_tags(tags, scheme) == []


@given(layout=span_layouts(allow_adjacent_same=False))
def test_schemes_roundtrip_io_without_touching_same_type(layout) -> None:
    # IO cannot separate two touching spans of one type; every other layout survives.
    length, spans = layout
    tags = spans_to_tags(spans, length, "io")
    assert tags_to_spans(tags) == spans
    assert validate_tags(tags, "io") == []


@pytest.mark.parametrize("src", [s for s in SCHEMES if s != "io"])
@pytest.mark.parametrize("dst", [s for s in SCHEMES if s != "io"])
@given(layout=span_layouts())
def test_schemes_convert_between_any_two(src: str, dst: str, layout) -> None:
    length, spans = layout
    converted = convert_tags(spans_to_tags(spans, length, src), dst)
    assert converted == spans_to_tags(spans, length, dst)


random_tag = st.sampled_from(["O", "O", "O"] + [f"{p}-{t}" for p in "BI" for t in TYPES])
random_bioes_tag = st.sampled_from(["O", "O"] + [f"{p}-{t}" for p in "BIES" for t in TYPES])


def _seqeval_spans(tags: list[str]) -> list[Span]:
    from seqeval.metrics.sequence_labeling import get_entities

    return sorted(Span(s, e + 1, t) for t, s, e in get_entities(list(tags)))


@settings(max_examples=400)
@given(tags=st.lists(random_tag, max_size=25))
def test_schemes_lenient_decoding_agrees_with_seqeval(tags: list[str]) -> None:
    assert tags_to_spans(tags) == _seqeval_spans(tags)


@settings(max_examples=400)
@given(tags=st.lists(random_bioes_tag, max_size=25))
def test_schemes_bioes_decoding_agrees_with_seqeval(tags: list[str]) -> None:
    assert tags_to_spans(tags) == _seqeval_spans(tags)


@settings(max_examples=300)
@given(tags=st.lists(random_tag, max_size=25))
def test_schemes_strict_decoding_agrees_with_seqeval_strict(tags: list[str]) -> None:
    from seqeval.scheme import IOB2, Entities

    entities = Entities([list(tags)], IOB2).entities[0]
    expected = sorted(Span(e.start, e.end, e.tag) for e in entities)
    assert strict_tags_to_spans(tags) == expected


@given(tags=st.lists(random_tag, max_size=25))
def test_schemes_conversion_to_iob2_is_valid_and_keeps_spans(tags: list[str]) -> None:
    iob2 = convert_tags(tags, "iob2")
    assert validate_tags(iob2, "iob2") == []
    assert tags_to_spans(iob2) == tags_to_spans(tags)
    # for valid IOB2 the strict and lenient decodings agree
    assert strict_tags_to_spans(iob2) == tags_to_spans(iob2)


def test_schemes_iob1_examples() -> None:
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert tags_to_spans(tags) == [Span(0, 2, "PER"), Span(2, 3, "PER"), Span(4, 5, "LOC")]
    assert convert_tags(tags, "iob2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert detect_scheme([tags]) == "iob1"
    assert validate_tags(["O", "B-PER"], "iob1")[0].index == 1


def test_schemes_suffix_notation() -> None:
    tags = ["PER_B", "PER_I", "O", "LOC_I"]
    assert parse_tag("ORG_I").prefix == "I" and parse_tag("ORG_I").type == "ORG"
    assert tags_to_spans(tags) == [Span(0, 2, "PER"), Span(3, 4, "LOC")]
    assert detect_scheme([tags]) == "suffix"
    assert convert_tags(tags, "iob2") == ["B-PER", "I-PER", "O", "B-LOC"]
    assert spans_to_tags([Span(0, 2, "PER")], 2, "suffix") == ["PER_B", "PER_I"]


def test_schemes_detection() -> None:
    assert detect_scheme([["B-PER", "I-PER", "O"]]) == "iob2"
    assert detect_scheme([["I-X", "I-X", "O"]]) == "io"
    assert detect_scheme([["S-X", "B-Y", "E-Y"]]) == "bioes"
    assert detect_scheme([["U-X", "B-Y", "L-Y"]]) == "bilou"
    assert detect_scheme([["O", "O"]]) == "iob2"


def test_schemes_validator_reports_every_violation() -> None:
    tags = ["O", "I-PER", "B-LOC", "I-ORG", "O"]
    found = validate_tags(tags, "iob2")
    assert [v.index for v in found] == [1, 3]
    assert "I-PER follows O" in found[0].message
    bioes = validate_tags(["B-PER", "O", "E-LOC", "S-ORG"], "bioes")
    assert {v.index for v in bioes} == {0, 2}
    assert validate_tags(["B-PER"], "io")[0].message.startswith("prefix B-")


def test_schemes_bad_tags() -> None:
    assert not is_valid_tag("I-")
    assert not is_valid_tag("XYZ")
    assert is_valid_tag("I-blockchainO")  # well-formed, odd type: inspect flags it, the schemes accept it
    with pytest.raises(TagSchemeError):
        tags_to_spans(["garbage"])
    with pytest.raises(TagSchemeError):
        tags_to_spans(["B"])
    assert tags_to_spans(["B", "I"], default_type="Skill") == [Span(0, 2, "Skill")]
    with pytest.raises(TagSchemeError):
        spans_to_tags([Span(0, 2, "A"), Span(1, 3, "B")], 3)
    with pytest.raises(TagSchemeError):
        spans_to_tags([Span(0, 2, "A")], 3, "iob3")
