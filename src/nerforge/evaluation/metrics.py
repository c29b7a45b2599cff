"""Strict entity-level scores, token accuracy and per-type counts for IOB2 tag sequences.

The scores are those of seqeval's ``classification_report(..., mode="strict", scheme=IOB2)``: an entity is a ``B-X``
followed by the longest run of ``I-X`` (:func:`nerforge.data.schemes.strict_tags_to_spans`), stray ``I-`` tags are
ignored, and a predicted entity counts only when its boundaries and type both match a gold one. The types scored are
those of the gold and predicted *entities*. Wherever a ratio would divide by zero it is 0.0 (seqeval's
``zero_division=0``; seqeval's macro average over no types at all is NaN, ours is 0.0).

Every result carries the mode and scheme behind it (:data:`MODE`, :data:`SCHEME`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from nerforge.data.schemes import OUTSIDE, parse_tag, strict_tags_to_spans
from nerforge.errors import LengthMismatchError, TagSchemeError, UsageError
from nerforge.types import Span

logger = logging.getLogger(__name__)

MODE = "strict"
SCHEME = "IOB2"

TagSequences = Sequence[Sequence[str]]


@dataclass(frozen=True)
class TypeScores:
    """Scores of one entity type (or of all types pooled, for the micro average).

    Attributes:
        support: number of gold entities.
        tp: predicted entities whose boundaries and type match a gold one.
        fp: predicted entities that match no gold one.
        fn: gold entities that no prediction matches.
    """

    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int

    @property
    def n_pred(self) -> int:
        """Number of predicted entities."""
        return self.tp + self.fp

    def to_dict(self) -> dict[str, float | int]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(frozen=True)
class AverageScores:
    """A macro or weighted average over entity types; ``support`` is the number of gold entities of all types."""

    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}


@dataclass(frozen=True)
class EvalResult:
    """Strict IOB2 entity scores of a set of predictions against gold tags.

    Attributes:
        micro: scores over all entities pooled, with the pooled counts.
        macro: unweighted mean of the per-type scores.
        weighted: mean of the per-type scores weighted by their support.
        per_type: scores of each type, keys sorted.
        token_accuracy: share of tokens whose predicted tag equals the gold tag.
        n_sentences: number of sentences compared.
        n_tokens: number of tokens compared.
        mode: the seqeval mode these scores reproduce (always ``"strict"``).
        scheme: the tag scheme (always ``"IOB2"``).
    """

    micro: TypeScores
    macro: AverageScores
    weighted: AverageScores
    per_type: dict[str, TypeScores]
    token_accuracy: float
    n_sentences: int
    n_tokens: int
    mode: str = MODE
    scheme: str = SCHEME

    @property
    def types(self) -> tuple[str, ...]:
        """The entity types scored, sorted."""
        return tuple(self.per_type)

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "scheme": self.scheme,
            "micro": self.micro.to_dict(),
            "macro": self.macro.to_dict(),
            "weighted": self.weighted.to_dict(),
            "per_type": {name: s.to_dict() for name, s in self.per_type.items()},
            "token_accuracy": self.token_accuracy,
            "n_sentences": self.n_sentences,
            "n_tokens": self.n_tokens,
        }

    def summary(self) -> str:
        """One line for logs, naming the mode and scheme."""
        m = self.micro
        return (
            f"{self.mode} {self.scheme} micro F1 {m.f1:.4f} (P {m.precision:.4f}, R {m.recall:.4f}) "
            f"over {m.support} gold / {m.n_pred} predicted entities; token accuracy {self.token_accuracy:.4f}"
        )


@dataclass(frozen=True)
class EpochRecord:
    """What one training epoch logged; any value may be missing (``None``)."""

    epoch: float | None = None
    train_loss: float | None = None
    eval_loss: float | None = None
    eval_f1: float | None = None
    eval_precision: float | None = None
    eval_recall: float | None = None
    eval_token_accuracy: float | None = None

    KEYS = ("epoch", "train_loss", "eval_loss", "eval_f1", "eval_precision", "eval_recall", "eval_token_accuracy")

    @classmethod
    def from_mapping(cls, record: Mapping[str, object], *, index: int = 0) -> EpochRecord:
        """Read the known keys of a log record; other keys are ignored. ``index`` only names the record in errors."""
        values: dict[str, float | None] = {}
        for key in cls.KEYS:
            raw = record.get(key)
            if raw is None:
                values[key] = None
                continue
            if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
                raise UsageError(f"epoch record {index}: {key} is {raw!r}; expected a number or None")
            values[key] = float(raw)
        return cls(**values)

    def to_dict(self) -> dict[str, float | None]:
        return {key: getattr(self, key) for key in self.KEYS}


def coerce_epochs(records: Iterable[EpochRecord | Mapping[str, object]]) -> list[EpochRecord]:
    """Epoch records from dataclasses or log dicts; a missing ``epoch`` becomes the 1-based position."""
    out: list[EpochRecord] = []
    for i, rec in enumerate(records):
        r = rec if isinstance(rec, EpochRecord) else EpochRecord.from_mapping(rec, index=i)
        if r.epoch is None:
            r = dataclasses.replace(r, epoch=float(i + 1))
        out.append(r)
    return out


def check_aligned(gold: TagSequences, pred: TagSequences) -> None:
    """Raise unless ``gold`` and ``pred`` have as many sentences and each pair of sentences as many tags.

    Raises:
        LengthMismatchError: naming the sentence index and both lengths.
    """
    if len(gold) != len(pred):
        raise LengthMismatchError(
            f"{len(gold)} gold sentences but {len(pred)} predicted ones; predict every gold sentence once, in order"
        )
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise LengthMismatchError(
                f"sentence {i}: {len(g)} gold tags but {len(p)} predicted tags; expected one predicted tag per token"
            )


def check_iob2(tags: Sequence[str], *, sentence: int, side: str, _seen: set[str] | None = None) -> None:
    """Raise unless every tag is ``O``, ``B-X`` or ``I-X`` (or ``X_B``/``X_I``).

    Raises:
        TagSchemeError: naming the side (gold/predicted), sentence, position and tag.
    """
    seen = _seen if _seen is not None else set()
    for j, tag in enumerate(tags):
        if tag in seen:
            continue
        try:
            parsed = parse_tag(tag)
        except TagSchemeError as exc:
            raise TagSchemeError(f"{side} sentence {sentence}, token {j}: {exc}") from None
        if parsed.prefix not in ("B", "I", OUTSIDE):
            raise TagSchemeError(
                f"{side} sentence {sentence}, token {j}: tag {tag!r} is not IOB2; "
                "convert it first with nerforge.data.schemes.convert_tags(tags, 'iob2')"
            )
        seen.add(tag)


def extract_spans(sequences: TagSequences, *, side: str = "gold") -> list[list[Span]]:
    """Strict IOB2 spans of each sentence, after checking that every tag is an IOB2 tag."""
    seen: set[str] = set()
    out = []
    for i, tags in enumerate(sequences):
        check_iob2(tags, sentence=i, side=side, _seen=seen)
        out.append(strict_tags_to_spans(tags))
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    # Same operations in the same order as seqeval, so that results agree to the last bit in most cases.
    den = precision + recall
    return 2.0 * precision * recall / den if den else 0.0


def scores_from_counts(tp: int, n_pred: int, n_gold: int) -> TypeScores:
    """Precision, recall and F1 from counts (0.0 where a denominator is zero)."""
    p = _ratio(tp, n_pred)
    r = _ratio(tp, n_gold)
    return TypeScores(p, r, _f1(p, r), n_gold, tp, n_pred - tp, n_gold - tp)


def average_scores(per_type: Mapping[str, TypeScores], *, weighted: bool) -> AverageScores:
    """Macro (``weighted=False``) or support-weighted mean of per-type scores; 0.0 when there is nothing to average."""
    rows = list(per_type.values())
    support = sum(s.support for s in rows)
    if weighted:
        weights = [float(s.support) for s in rows]
    else:
        weights = [1.0] * len(rows)
    total = math.fsum(weights)
    if not total:
        return AverageScores(0.0, 0.0, 0.0, support)

    def mean(values: list[float]) -> float:
        return math.fsum(v * w for v, w in zip(values, weights, strict=True)) / total

    return AverageScores(
        mean([s.precision for s in rows]),
        mean([s.recall for s in rows]),
        mean([s.f1 for s in rows]),
        support,
    )


def pooled(per_type: Mapping[str, TypeScores]) -> TypeScores:
    """The micro scores of per-type scores: their counts added up.

    >>> pooled({"A": scores_from_counts(1, 2, 1), "B": scores_from_counts(0, 0, 1)}).recall
    0.5
    """
    return scores_from_counts(sum(s.tp for s in per_type.values()), sum(s.n_pred for s in per_type.values()),
                              sum(s.support for s in per_type.values()))  # fmt: skip


def score_spans(gold_spans: Sequence[Sequence[Span]], pred_spans: Sequence[Sequence[Span]]) -> dict[str, TypeScores]:
    """Per-type scores of predicted spans against gold spans, sentence by sentence; keys sorted."""
    gold_n: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    tp_n: Counter[str] = Counter()
    for g, p in zip(gold_spans, pred_spans, strict=True):
        gset, pset = set(g), set(p)
        gold_n.update(s.label for s in gset)
        pred_n.update(s.label for s in pset)
        tp_n.update(s.label for s in gset & pset)
    types = sorted(set(gold_n) | set(pred_n))
    return {t: scores_from_counts(tp_n[t], pred_n[t], gold_n[t]) for t in types}


def evaluate(gold: TagSequences, pred: TagSequences) -> EvalResult:
    """Strict IOB2 entity scores (as seqeval's ``mode="strict", scheme=IOB2``) and token accuracy.

    Args:
        gold: one list of IOB2 tags per sentence.
        pred: predicted tags, as many sentences as ``gold`` and as many tags per sentence.

    Raises:
        LengthMismatchError: different numbers of sentences, or of tags in one sentence.
        TagSchemeError: a tag that is not ``O``, ``B-X`` or ``I-X``.

    >>> r = evaluate([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    >>> (r.micro.tp, r.micro.fp, r.micro.fn, round(r.token_accuracy, 4))
    (0, 1, 1, 0.6667)
    """
    check_aligned(gold, pred)
    gold_spans = extract_spans(gold, side="gold")
    pred_spans = extract_spans(pred, side="predicted")
    per_type = score_spans(gold_spans, pred_spans)
    n_tokens = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred, strict=True) for a, b in zip(g, p, strict=True))
    result = EvalResult(
        micro=pooled(per_type),
        macro=average_scores(per_type, weighted=False),
        weighted=average_scores(per_type, weighted=True),
        per_type=per_type,
        token_accuracy=_ratio(correct, n_tokens),
        n_sentences=len(gold),
        n_tokens=n_tokens,
    )
    logger.debug("evaluated %d sentences: %s", len(gold), result.summary())
    return result
