"""Why predicted entities miss: gold and predicted spans compared sentence by sentence.

Spans are the strict IOB2 ones the metrics score (:func:`nerforge.evaluation.metrics.extract_spans`). Every
overlapping (gold, predicted) pair gets one category:

* ``exact``: same boundaries, same type (a true positive);
* ``type``: same boundaries, another type;
* ``boundary``: overlapping with other boundaries, same type;
* ``boundary_type``: overlapping with other boundaries and another type.

A gold span that overlaps no prediction is ``missed``; a predicted span that overlaps no gold one is ``spurious``.
Pairs are counted, so a gold span split into two predictions gives two ``boundary`` cases. The number of ``exact``
cases equals the micro true-positive count. Per-type counts are keyed by the gold type, except ``spurious`` which
is keyed by the predicted type. Examples come in document order (sentence, then position), so output is stable.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nerforge.errors import UsageError
from nerforge.evaluation.metrics import TagSequences, check_aligned, extract_spans
from nerforge.types import Span

logger = logging.getLogger(__name__)

EXACT = "exact"
TYPE = "type"
BOUNDARY = "boundary"
BOUNDARY_TYPE = "boundary_type"
MISSED = "missed"
SPURIOUS = "spurious"
CATEGORIES = (EXACT, TYPE, BOUNDARY, BOUNDARY_TYPE, MISSED, SPURIOUS)
ERROR_CATEGORIES = CATEGORIES[1:]

CATEGORY_TITLES = {
    EXACT: "exact match",
    TYPE: "type error (same boundaries, other type)",
    BOUNDARY: "boundary error (overlap, same type)",
    BOUNDARY_TYPE: "boundary and type error (overlap, other type)",
    MISSED: "missed (no overlapping prediction)",
    SPURIOUS: "spurious (no overlapping gold entity)",
}


@dataclass(frozen=True)
class SpanText:
    """A span of one sentence with its text (``None`` when the tokens are unknown)."""

    start: int
    end: int
    label: str
    text: str | None

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "label": self.label, "text": self.text}


@dataclass(frozen=True)
class ErrorCase:
    """One categorised comparison: a (gold, predicted) pair, a missed gold span or a spurious prediction."""

    category: str
    sentence: int
    gold: SpanText | None
    pred: SpanText | None
    tokens: tuple[str, ...] | None = None

    @property
    def start(self) -> int:
        return min(s.start for s in (self.gold, self.pred) if s is not None)

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "sentence": self.sentence,
            "tokens": list(self.tokens) if self.tokens is not None else None,
            "gold": self.gold.to_dict() if self.gold else None,
            "pred": self.pred.to_dict() if self.pred else None,
        }


@dataclass(frozen=True)
class ErrorAnalysis:
    """Counts of each category, overall and per type, with the first examples of each.

    Attributes:
        counts: every category in :data:`CATEGORIES`, zero included.
        per_type: type -> category -> count (gold type; predicted type for ``spurious``), types sorted.
        type_confusions: ``(gold type, predicted type, count)`` over ``type`` and ``boundary_type`` cases,
            most frequent first.
        examples: category -> up to ``max_examples`` cases in document order.
        n_gold: gold spans compared.
        n_pred: predicted spans compared.
    """

    counts: dict[str, int]
    per_type: dict[str, dict[str, int]]
    type_confusions: tuple[tuple[str, str, int], ...]
    examples: dict[str, tuple[ErrorCase, ...]]
    n_gold: int
    n_pred: int
    max_examples: int

    @property
    def n_errors(self) -> int:
        """Cases in every category but ``exact``."""
        return sum(self.counts[c] for c in ERROR_CATEGORIES)

    def to_dict(self, *, include_examples: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            "counts": dict(self.counts),
            "per_type": {t: dict(c) for t, c in self.per_type.items()},
            "type_confusions": [{"gold": g, "pred": p, "count": n} for g, p, n in self.type_confusions],
            "n_gold": self.n_gold,
            "n_pred": self.n_pred,
        }
        if include_examples:
            out["examples"] = {c: [e.to_dict() for e in cases] for c, cases in self.examples.items()}
        return out


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def pair_category(gold: Span, pred: Span) -> str:
    """The category of an overlapping (gold, predicted) pair."""
    same_bounds = (gold.start, gold.end) == (pred.start, pred.end)
    same_type = gold.label == pred.label
    if same_bounds:
        return EXACT if same_type else TYPE
    return BOUNDARY if same_type else BOUNDARY_TYPE


def classify_spans(gold: Sequence[Span], pred: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """Categorise the spans of one sentence as ``(category, gold span or None, predicted span or None)``.

    The result is sorted by position (start, then end), then by category order.

    >>> classify_spans([Span(0, 2, "LOC")], [Span(1, 2, "LOC"), Span(3, 4, "PER")])
    [('boundary', Span(start=0, end=2, label='LOC'), Span(start=1, end=2, label='LOC')), \
('spurious', None, Span(start=3, end=4, label='PER'))]
    """
    out: list[tuple[str, Span | None, Span | None]] = []
    matched_pred: set[int] = set()
    for g in gold:
        hits = [(j, p) for j, p in enumerate(pred) if _overlap(g, p)]
        if not hits:
            out.append((MISSED, g, None))
        for j, p in hits:
            matched_pred.add(j)
            out.append((pair_category(g, p), g, p))
    for j, p in enumerate(pred):
        if j not in matched_pred:
            out.append((SPURIOUS, None, p))

    def key(item: tuple[str, Span | None, Span | None]) -> tuple[int, int, int, int]:
        cat, g, p = item
        first = min(s.start for s in (g, p) if s is not None)
        return (first, g.start if g else -1, p.start if p else -1, CATEGORIES.index(cat))

    return sorted(out, key=key)


def _text(span: Span | None, tokens: Sequence[str] | None) -> SpanText | None:
    if span is None:
        return None
    text = " ".join(tokens[span.start : span.end]) if tokens is not None else None
    return SpanText(span.start, span.end, span.label, text)


def analyse_errors(
    gold: TagSequences,
    pred: TagSequences,
    tokens: Sequence[Sequence[str]] | None = None,
    *,
    max_examples: int = 5,
) -> ErrorAnalysis:
    """Categorise every gold and predicted entity of a corpus (see the module docstring).

    Args:
        gold: IOB2 tags per sentence.
        pred: predicted IOB2 tags, aligned with ``gold``.
        tokens: the words of each sentence, for the example texts (optional).
        max_examples: cases kept per category.

    Raises:
        LengthMismatchError: sentences or tokens that do not line up.
        TagSchemeError: a tag that is not IOB2.
    """
    check_aligned(gold, pred)
    if tokens is not None:
        check_aligned(gold, tokens)
    if max_examples < 0:
        raise UsageError(f"max_examples is {max_examples}; expected 0 or more")
    gold_spans = extract_spans(gold, side="gold")
    pred_spans = extract_spans(pred, side="predicted")
    counts: Counter[str] = Counter()
    per_type: dict[str, Counter[str]] = {}
    confusions: Counter[tuple[str, str]] = Counter()
    examples: dict[str, list[ErrorCase]] = {c: [] for c in CATEGORIES}
    for i, (gs, ps) in enumerate(zip(gold_spans, pred_spans, strict=True)):
        words = tuple(tokens[i]) if tokens is not None else None
        for cat, g, p in classify_spans(gs, ps):
            counts[cat] += 1
            label = g.label if g is not None else p.label  # type: ignore[union-attr]
            per_type.setdefault(label, Counter())[cat] += 1
            if cat in (TYPE, BOUNDARY_TYPE):
                confusions[(g.label, p.label)] += 1  # type: ignore[union-attr]
            if len(examples[cat]) < max_examples:
                examples[cat].append(ErrorCase(cat, i, _text(g, words), _text(p, words), words))
    analysis = ErrorAnalysis(
        counts={c: counts[c] for c in CATEGORIES},
        per_type={t: {c: per_type[t][c] for c in CATEGORIES} for t in sorted(per_type)},
        type_confusions=tuple((g, p, n) for (g, p), n in sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))),
        examples={c: tuple(v) for c, v in examples.items()},
        n_gold=sum(len(s) for s in gold_spans),
        n_pred=sum(len(s) for s in pred_spans),
        max_examples=max_examples,
    )
    logger.debug("error analysis: %s", analysis.counts)
    return analysis
