"""Entity-score calibration (issue 17, item 5): pure functions, checked on data whose true calibration is known."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.evaluation.calibration import (
    MIN_ENTITIES,
    Scored,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability,
    rescaled,
    scored_entities,
)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _synthetic(n: int, temperature: float, shift: float, seed: int = 0) -> list[Scored]:
    """Scores whose true chance of being right is sigmoid(logit(score) / temperature + shift)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        score = rng.uniform(0.02, 0.98)
        truth = 1 / (1 + math.exp(-(_logit(score) / temperature + shift)))
        out.append(Scored(score, rng.random() < truth))
    return out


def test_fit_recovers_a_known_temperature_and_shift() -> None:
    items = _synthetic(6000, temperature=0.5, shift=1.0)
    t, b = fit_temperature(items)
    assert t == pytest.approx(0.5, rel=0.1) and b == pytest.approx(1.0, abs=0.15)
    before, after = expected_calibration_error(items), expected_calibration_error(rescaled(items, t, b))
    assert before > 0.1 and after < 0.03 and after < before / 4


def test_already_calibrated_scores_keep_about_the_identity() -> None:
    items = _synthetic(6000, temperature=1.0, shift=0.0, seed=1)
    t, b = fit_temperature(items)
    assert t == pytest.approx(1.0, rel=0.1) and abs(b) < 0.1
    assert expected_calibration_error(items) < 0.03


def test_too_few_or_one_sided_entities_fit_nothing() -> None:
    assert fit_temperature([Scored(0.3, True)] * (MIN_ENTITIES - 1)) == (1.0, 0.0)
    assert fit_temperature([Scored(0.3, True)] * 100) == (1.0, 0.0)
    assert fit_temperature([Scored(0.9, False)] * 100) == (1.0, 0.0)


def test_ece_by_hand() -> None:
    items = [Scored(0.95, True)] * 9 + [Scored(0.95, False)] + [Scored(0.15, False)] * 10
    # bin 9: confidence 0.95, accuracy 0.9; bin 1: confidence 0.15, accuracy 0.0
    assert reliability(items) == [(pytest.approx(0.15), 0.0, 10), (pytest.approx(0.95), 0.9, 10)]
    assert expected_calibration_error(items) == pytest.approx((10 * 0.05 + 10 * 0.15) / 20)
    assert expected_calibration_error([]) == 0.0


@given(st.floats(0.001, 0.999), st.floats(0.001, 0.999), st.floats(0.05, 20), st.floats(-5, 5))
@settings(max_examples=200, deadline=None)
def test_calibration_keeps_the_order_of_scores(a: float, b: float, t: float, shift: float) -> None:
    ca, cb = apply_temperature(a, t, shift), apply_temperature(b, t, shift)
    assert 0.0 <= ca <= 1.0 and 0.0 <= cb <= 1.0
    if a < b:
        assert ca <= cb
    assert apply_temperature(a, 1.0, 0.0) == a


def test_scored_entities_match_exact_spans_and_types() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    scores = [[0.9, 0.7, 0.99, 0.4]]
    assert scored_entities(gold, pred, scores) == [Scored(pytest.approx(0.8), True), Scored(0.4, False)]


def test_scores_that_say_the_opposite_of_right_get_a_bounded_fit_never_worse_than_none() -> None:
    """A barely trained model on 300 types (bench/many_types.py) had its confident entities wrong and its unsure ones
    right: the joint fit ran off, the temperature was clamped at 20 and the shift kept at -912482, and the ECE got
    worse (0.122 -> 0.126)."""
    rng = random.Random(1)
    cases = {
        "saturated": [Scored(1 - 1e-9 * rng.random(), rng.random() < 0.3) for _ in range(250)],
        "confidently wrong": [Scored(0.999, False) for _ in range(200)] + [Scored(0.5, True) for _ in range(53)],
        "mixed": [Scored(rng.uniform(0.99, 0.9999), rng.random() < 0.1) for _ in range(200)]
        + [Scored(rng.uniform(0.2, 0.5), rng.random() < 0.5) for _ in range(53)],
    }
    for name, items in cases.items():
        temperature, shift = fit_temperature(items)
        assert 0.05 <= temperature <= 20 and abs(shift) <= 50, (name, temperature, shift)
        after = expected_calibration_error(rescaled(items, temperature, shift))
        assert after <= expected_calibration_error(items), name
    saturated = cases["saturated"]  # all scores alike: the shift alone brings them to the share that is right
    assert expected_calibration_error(rescaled(saturated, *fit_temperature(saturated))) < 0.05
