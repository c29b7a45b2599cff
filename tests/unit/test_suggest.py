"""Ranking unlabelled texts for annotation (issue 17, item 3): pure functions, property-tested."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.prediction.suggest import Candidate, fingerprint, jaccard, rank, uncertainty


def test_uncertainty_is_length_normalised() -> None:
    assert uncertainty([]) == 0.0
    assert uncertainty([1.0, 1.0]) == 0.0
    assert uncertainty([0.5]) == pytest.approx(0.5)
    # the same per-word confidence gives the same score at any length
    assert uncertainty([0.9] * 3) == pytest.approx(uncertainty([0.9] * 30))
    # one unsure word in a short text counts more than in a long one, but always above a sure text
    short, long = uncertainty([0.99, 0.2]), uncertainty([0.99] * 20 + [0.2])
    assert short > long > uncertainty([0.99] * 21)


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50))
@settings(max_examples=100, deadline=None)
def test_uncertainty_stays_in_range_and_falls_as_confidence_rises(scores: list[float]) -> None:
    u = uncertainty(scores)
    assert 0.0 <= u <= 1.0
    raised = [min(1.0, s + 0.1) for s in scores]
    assert uncertainty(raised) <= u + 1e-12


def _pool(texts_scores: list[tuple[str, float]]) -> list[Candidate]:
    return [Candidate(i, t, s, i + 1) for i, (t, s) in enumerate(texts_scores)]


def test_uncertainty_strategy_takes_the_least_sure_first_without_duplicates() -> None:
    pool = _pool([
        ("Python and SQL wanted.", 0.1),
        ("Senior Kubernetes engineer in Berlin.", 0.9),
        ("Senior Kubernetes engineer in Berlin!", 0.95),  # the same text, other punctuation
        ("senior  kubernetes ENGINEER in berlin 2024", 0.97),  # same letters: a duplicate
        ("Strong communication skills needed.", 0.5),
        ("", 1.0),  # empty texts are never suggested
    ])  # fmt: skip
    chosen = rank(pool, 3, "uncertainty")
    assert [c.index for c in chosen] == [3, 4, 0]
    assert rank(pool, 0) == [] and len(rank(pool, 100)) == 3


def test_near_duplicates_by_word_sets_are_skipped() -> None:
    base = "we need a data engineer with python sql spark airflow kafka and dbt experience in the cloud team"
    pool = _pool([(base, 0.9), (base + " now", 0.8), ("a designer with figma", 0.1)])
    assert jaccard(frozenset(base.split()), frozenset((base + " now").split())) >= 0.9
    assert [c.index for c in rank(pool, 2)] == [0, 2]


def test_diverse_prefers_unlike_texts_over_a_slightly_less_sure_repeat() -> None:
    pool = _pool([
        ("python developer for backend services in berlin", 0.90),
        ("python developer for backend services in munich", 0.89),  # 0.75 similar: not a duplicate
        ("nurse for the night shift at the clinic", 0.80),
    ])  # fmt: skip
    assert [c.index for c in rank(pool, 2, "uncertainty")] == [0, 1]
    assert [c.index for c in rank(pool, 2, "diverse")] == [0, 2]


def test_random_is_seeded_and_ignores_scores() -> None:
    pool = _pool([(f"text number {w}", i / 100) for i, w in enumerate(["one", "two", "three", "four", "five",
                                                                         "six", "seven", "eight"])])  # fmt: skip
    a, b, c = rank(pool, 4, "random", 1), rank(pool, 4, "random", 1), rank(pool, 4, "random", 2)
    assert a == b and a != c
    assert [x.index for x in rank(pool, 4, "uncertainty")] == [7, 6, 5, 4]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        rank([], 1, "entropy")
    with pytest.raises(ValueError, match="at least 0"):
        rank([], -1)


def test_fingerprint_ignores_case_digits_and_punctuation() -> None:
    assert fingerprint("Hello, World 2024!") == fingerprint("hello world") == "hello world"
    assert not math.isnan(uncertainty([0.0]))
