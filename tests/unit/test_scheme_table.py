"""The scheme table (nerforge.tags) is the only place a scheme's rules are written: the transition mask, validation,
encoding, decoding and detection all agree with it, for every scheme and every pair of tags (issue 26)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.data.schemes import (
    detect_scheme,
    may_follow,
    spans_to_tags,
    strict_tags_to_spans,
    tags_to_spans,
    validate_tags,
)
from nerforge.modeling.viterbi import allowed_transitions
from nerforge.tags import OUTSIDE, SCHEME_TABLE, SCHEMES, Role, iob2_tags, make_tag, parse_tag, tag_type
from nerforge.types import Span

TYPES = ("PER", "LOC")


def tag_set(name: str) -> list[str]:
    s = SCHEME_TABLE[name]
    return [OUTSIDE, *(s.spell(letter, t) for t in TYPES for letter in s.letters)]


def _opens_ok(s, tag: str) -> bool:
    p = parse_tag(tag)
    return p.role is None or p.role in s.opening_roles


def _closes_ok(s, tag: str) -> bool:
    p = parse_tag(tag)
    return not (s.closes_explicitly and p.role in (Role.BEGIN, Role.INSIDE))


@pytest.mark.parametrize("name", SCHEMES)
def test_the_transition_mask_is_the_table_s_for_every_pair_of_tags(name: str) -> None:
    """The mask the CRF decodes with, ``may_follow`` and ``validate_tags`` say the same of every pair: a pair is
    allowed exactly when a valid sentence can hold it."""
    s = SCHEME_TABLE[name]
    tags = tag_set(name)
    mask = allowed_transitions(tags, name)
    for (i, a), (j, b) in itertools.product(enumerate(tags), repeat=2):
        assert bool(mask[i, j]) == may_follow(a, b, name), (a, b)
        # a valid sentence holding a then b: open before a where a must continue, close after b where b must end
        opener = next(k for k, r in s.letters.items() if r in s.opening_roles and r in (Role.BEGIN, Role.INSIDE))
        before = [] if _opens_ok(s, a) else [s.spell(opener, tag_type(a))]
        after = [] if _closes_ok(s, b) else [s.spell(s.letter(Role.END) or "I", tag_type(b))]
        valid = not validate_tags([*before, a, b, *after], name)
        assert valid == may_follow(a, b, name), (name, before, a, b, after)


def test_iob2_s_mask_is_the_rule_everyone_knows() -> None:
    """An independent oracle: in IOB2, I-X follows only B-X or I-X, and everything else may follow anything."""
    tags = list(iob2_tags(["PER", "LOC", "us-gaap:Revenues"]))
    mask = allowed_transitions(tags)
    for (i, a), (j, b) in itertools.product(enumerate(tags), repeat=2):
        expected = not b.startswith("I-") or a in ("B-" + b[2:], b)
        assert bool(mask[i, j]) == expected, (a, b)


@st.composite
def spans(draw: st.DrawFn) -> tuple[int, list[Span]]:
    length = draw(st.integers(0, 12))
    out, i = [], 0
    while i < length:
        if draw(st.booleans()):
            end = draw(st.integers(i + 1, min(length, i + 4)))
            out.append(Span(i, end, draw(st.sampled_from(TYPES))))
            i = end
        else:
            i += 1
    return length, out


@pytest.mark.parametrize("name", [n for n in SCHEMES if n != "io"])
@given(layout=spans())
def test_every_scheme_encodes_valid_tags_that_round_trip(name: str, layout: tuple[int, list[Span]]) -> None:
    length, chunks = layout
    tags = spans_to_tags(chunks, length, name)
    assert validate_tags(tags, name) == []
    assert all(may_follow(a, b, name) for a, b in itertools.pairwise(tags))
    assert tags_to_spans(tags) == chunks
    if name in ("iob2", "suffix"):
        assert strict_tags_to_spans(tags) == chunks


@given(layout=spans())
def test_io_round_trips_when_chunks_of_one_type_do_not_touch(layout: tuple[int, list[Span]]) -> None:
    length, chunks = layout
    touching = any(a.end == b.start and a.label == b.label for a, b in itertools.pairwise(chunks))
    tags = spans_to_tags(chunks, length, "io")
    assert validate_tags(tags, "io") == []
    assert (tags_to_spans(tags) == chunks) or touching


@pytest.mark.parametrize("name", SCHEMES)
def test_detection_finds_each_scheme_from_data_that_shows_it(name: str) -> None:
    chunks = [Span(0, 2, "PER"), Span(2, 3, "PER"), Span(4, 5, "LOC"), Span(6, 9, "LOC")]
    corpus = [spans_to_tags(chunks, 10, name), spans_to_tags([Span(1, 2, "LOC")], 3, name)]
    assert detect_scheme(corpus) == name


def test_tags_are_spelt_and_read_through_the_table() -> None:
    assert make_tag(Role.BEGIN, "PER") == "B-PER" and make_tag(Role.END, "PER", "bilou") == "L-PER"
    assert make_tag(Role.BEGIN, "PER", "io") == "I-PER" and make_tag(Role.SINGLE, "PER", "iob2") == "B-PER"
    assert make_tag(Role.INSIDE, "PER", "suffix") == "PER_I" and make_tag(None, "PER") == OUTSIDE
    assert tag_type("B-us-gaap:Revenues") == "us-gaap:Revenues" and tag_type("PER_B") == "PER"
    assert tag_type(OUTSIDE) is None
    assert iob2_tags(["A", "B"]) == ("O", "B-A", "I-A", "B-B", "I-B")
    assert np.array_equal(
        allowed_transitions(list(iob2_tags(["A"]))),
        np.array([[True, True, False], [True, True, True], [True, True, True]]),
    )
