"""Calibrated entity scores: temperature scaling fitted on dev, and the expected calibration error (ECE).

An entity's raw score is the mean probability the model gave its words' tags. Calibrated, a score should be the
chance that the entity is right (exact span and type): of the entities scored 0.8, about 80% correct. A temperature
``T`` and a shift ``b`` rescale every score in logit space, ``p' = sigmoid(logit(p) / T + b)``: temperature scaling
(Guo et al., 2017) applied to the entity confidence, with the shift of Platt scaling, because a CRF's per-word
probabilities are often all too low (a bias no temperature alone can remove: it keeps 0.5 fixed). ``T > 1`` softens,
``T < 1`` sharpens, and the order of entities by score never changes (``T > 0``). Both are fitted by maximum
likelihood of "correct or not" over the dev entities (a one-feature logistic regression on ``logit(p)``, solved by
Newton's method).

ECE: the entities are put in ``bins`` equal-width confidence bins; ECE is the mean, weighted by bin size, of
``|accuracy - mean confidence|`` per bin (0 is perfect).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nerforge.data.schemes import strict_tags_to_spans

_EPS = 1e-6
MIN_ENTITIES = 20  # fewer dev entities than this: no temperature is fitted (T = 1)


@dataclass(frozen=True)
class Scored:
    """One predicted entity: its confidence and whether it is right (exact span and type)."""

    score: float
    correct: bool


def scored_entities(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], word_scores: Sequence[Sequence[float]]
) -> list[Scored]:
    """Every predicted entity of IOB2 ``pred`` with its mean word score and its correctness against ``gold``."""
    out = []
    for g, p, s in zip(gold, pred, word_scores, strict=True):
        truth = {(x.start, x.end, x.label) for x in strict_tags_to_spans(g)}
        for span in strict_tags_to_spans(p):
            scores = s[span.start : span.end]
            out.append(Scored(sum(scores) / len(scores), (span.start, span.end, span.label) in truth))
    return out


def apply_temperature(score: float, temperature: float, shift: float = 0.0) -> float:
    """``sigmoid(logit(score) / temperature + shift)``; ``(1, 0)`` returns the score unchanged."""
    if temperature == 1.0 and shift == 0.0:
        return score
    p = min(1 - _EPS, max(_EPS, score))
    z = math.log(p / (1 - p)) / temperature + shift
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


_MAX_SHIFT = 50.0  # logits beyond +-50 are certainties: a shift past that calibrates nothing


def fit_temperature(items: Sequence[Scored]) -> tuple[float, float]:
    """``(temperature, shift)`` maximising the likelihood of ``items`` (``(1.0, 0.0)`` with fewer than
    :data:`MIN_ENTITIES`, or when they are all right or all wrong: nothing to calibrate against)."""
    if len(items) < MIN_ENTITIES or all(x.correct for x in items) or not any(x.correct for x in items):
        return 1.0, 0.0
    xs = [math.log(min(1 - _EPS, max(_EPS, x.score)) / (1 - min(1 - _EPS, max(_EPS, x.score)))) for x in items]
    ys = [1.0 if x.correct else 0.0 for x in items]
    w, b = 1.0, 0.0
    ridge = 1e-3  # keeps the Newton steps finite when the scores separate right from wrong perfectly
    for _ in range(50):
        g_w = g_b = h_ww = h_wb = h_bb = 0.0
        for x, y in zip(xs, ys, strict=True):
            z = w * x + b
            q = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            r = q - y
            v = q * (1 - q)
            g_w += r * x
            g_b += r
            h_ww += v * x * x
            h_wb += v * x
            h_bb += v
        g_w += ridge * (w - 1.0)
        h_ww += ridge
        h_bb += ridge
        det = h_ww * h_bb - h_wb * h_wb
        if det <= 0:
            break
        step_w = (h_bb * g_w - h_wb * g_b) / det
        step_b = (h_ww * g_b - h_wb * g_w) / det
        w, b = w - step_w, b - step_b
        if abs(step_w) < 1e-8 and abs(step_b) < 1e-8:
            break
    # T in [0.05, 20] (a positive temperature keeps the order of the scores) and a bounded shift. Where the joint fit
    # leaves that range (scores that say little or the opposite of right, as from a model that has barely learned:
    # it once ran to T 20 with a shift of -912482), the shift alone is refitted, for the bounded slope and for the
    # slope 1 (scores that are all alike leave the slope undetermined). Of the raw scores, the joint fit and the
    # refitted ones, the best calibrated on these items is kept: never worse than none.
    bounded = min(max(w, 0.05), 20.0) if math.isfinite(w) else 1.0
    candidates = [(1.0, 0.0), (bounded, _fit_shift(xs, ys, bounded)), (1.0, _fit_shift(xs, ys, 1.0))]
    if math.isfinite(b) and bounded == w and abs(b) <= _MAX_SHIFT:
        candidates.insert(1, (w, b))
    scored = [(round(1.0 / cw, 4), round(cb, 4)) for cw, cb in candidates]
    return min(scored, key=lambda ts: expected_calibration_error(rescaled(items, *ts)))


def _fit_shift(xs: Sequence[float], ys: Sequence[float], w: float) -> float:
    """The likelihood-maximising shift ``b`` of ``sigmoid(w * x + b)`` for a fixed slope, in ``[-50, 50]``: the root of
    ``sum(sigmoid(w * x + b) - y)``, which grows with ``b``, found by bisection (Newton steps run off where the
    scores are saturated)."""

    def excess(b: float) -> float:
        total = 0.0
        for x, y in zip(xs, ys, strict=True):
            z = w * x + b
            total += (1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))) - y
        return total

    low, high = -_MAX_SHIFT, _MAX_SHIFT
    if excess(low) >= 0:
        return low
    if excess(high) <= 0:
        return high
    for _ in range(60):
        mid = (low + high) / 2
        if excess(mid) > 0:
            high = mid
        else:
            low = mid
    return (low + high) / 2


def reliability(items: Sequence[Scored], bins: int = 10) -> list[tuple[float, float, int]]:
    """Per confidence bin: ``(mean confidence, accuracy, count)`` (empty bins left out)."""
    buckets: list[list[Scored]] = [[] for _ in range(bins)]
    for x in items:
        buckets[min(bins - 1, int(x.score * bins))].append(x)
    return [(sum(x.score for x in b) / len(b), sum(x.correct for x in b) / len(b), len(b)) for b in buckets if b]


def expected_calibration_error(items: Sequence[Scored], bins: int = 10) -> float:
    """ECE (see the module docstring); 0.0 for no entities."""
    if not items:
        return 0.0
    return sum(n * abs(acc - conf) for conf, acc, n in reliability(items, bins)) / len(items)


def rescaled(items: Sequence[Scored], temperature: float, shift: float = 0.0) -> list[Scored]:
    return [Scored(apply_temperature(x.score, temperature, shift), x.correct) for x in items]
