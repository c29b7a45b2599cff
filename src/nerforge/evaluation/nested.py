"""Strict span-level scores for entities that overlap: per layer, per type, overall, and by nesting depth.

Gold and predicted entities are sets of :class:`~nerforge.types.Span` per sentence, each with its layer; a predicted
span is right when a gold span has the same words, type and layer (strict, as :mod:`nerforge.evaluation.metrics`
scores flat tags: for flat data in one layer both give the same numbers). An inner entity is scored on its own, so
finding the outer one and missing the inner one is one true positive and one false negative, never two misses.

By depth, as GermEval 2014 reports its outer and inner levels: a span is *outer* when no other span of its layer in
the same sentence holds it, else *inner* (:func:`nerforge.data.layers.depths`, on each side separately), and each
level is scored against the same level of the other side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nerforge.data.layers import depths, in_layer, layer_names, layer_tags, qualified
from nerforge.evaluation.metrics import (
    AverageScores,
    EvalResult,
    TypeScores,
    average_scores,
    evaluate,
    pooled,
    score_spans,
    scores_from_counts,
)
from nerforge.types import Example, Span

OUTER, INNER = "outer", "inner"


@dataclass(frozen=True)
class LayeredScores:
    """Scores of overlapping entities (see the module docstring).

    Attributes:
        micro: every entity of every layer pooled.
        macro: the unweighted mean over ``(layer, type)`` pairs.
        per_layer: each layer's pooled scores, in order of first appearance.
        per_layer_type: each layer's scores by type.
        by_depth: ``outer`` and ``inner`` entities, each scored against the other side's entities of that level.
        n_sentences: sentences compared.
    """

    micro: TypeScores
    macro: AverageScores
    per_layer: dict[str, TypeScores]
    per_layer_type: dict[str, dict[str, TypeScores]]
    by_depth: dict[str, TypeScores]
    n_sentences: int

    def to_dict(self) -> dict[str, object]:
        return {"micro": self.micro.to_dict(), "macro": self.macro.to_dict(),
                "per_layer": {k: v.to_dict() for k, v in self.per_layer.items()},
                "per_layer_type": {k: {t: s.to_dict() for t, s in v.items()} for k, v in self.per_layer_type.items()},
                "by_depth": {k: v.to_dict() for k, v in self.by_depth.items()}, "n_sentences": self.n_sentences}  # fmt: skip


def _levels(spans: Sequence[Span]) -> dict[str, set[Span]]:
    out: dict[str, set[Span]] = {OUTER: set(), INNER: set()}
    for layer in layer_names(spans):
        mine = in_layer(set(spans), layer)
        for depth, span in zip(depths(mine), mine, strict=True):
            out[INNER if depth else OUTER].add(span)
    return out


def score_layered(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]]) -> LayeredScores:
    """Scores of predicted against gold entities, sentence by sentence (see the module docstring).

    Raises:
        ValueError: different numbers of sentences.

    >>> gold = [[Span(0, 3, "ORG"), Span(0, 1, "LOC")]]
    >>> score_layered(gold, [[Span(0, 3, "ORG")]]).by_depth["inner"].recall
    0.0
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    layers = list(layer_names(s for sentence in (*gold, *pred) for s in sentence))
    per_layer_type = {layer: score_spans([in_layer(g, layer) for g in gold], [in_layer(p, layer) for p in pred])
                      for layer in layers}  # fmt: skip
    per_layer = {layer: pooled(scores) for layer, scores in per_layer_type.items()}
    pairs = {f"{layer}\t{t}": s for layer, scores in per_layer_type.items() for t, s in scores.items()}
    depth_counts: dict[str, Counter[str]] = {OUTER: Counter(), INNER: Counter()}
    for g, p in zip(gold, pred, strict=True):
        gl, pl = _levels(g), _levels(p)
        for level in (OUTER, INNER):
            depth_counts[level].update(tp=len(gl[level] & pl[level]), pred=len(pl[level]), gold=len(gl[level]))
    by_depth = {level: scores_from_counts(c["tp"], c["pred"], c["gold"]) for level, c in depth_counts.items()}
    return LayeredScores(micro=pooled(pairs), macro=average_scores(pairs, weighted=False), per_layer=per_layer,
                         per_layer_type=per_layer_type, by_depth=by_depth, n_sentences=len(gold))  # fmt: skip


def layer_sentences(
    examples: Sequence[Example], predictions: Sequence[Any], layers: Sequence[tuple[str, Sequence[str]]]
) -> tuple[list[list[str]], list[list[str]]]:
    """A layered model's gold and predicted tags as flat sequences, one per sentence and layer, their types named
    by layer (:func:`nerforge.data.layers.qualified`): strict scores per ``layer/type``, pooled over the layers,
    and the flat report (confusion, error analysis) come from these. ``predictions[i].layers`` holds each layer's
    prediction of sentence ``i``."""
    gold: list[list[str]] = []
    pred: list[list[str]] = []
    for ex, p in zip(examples, predictions, strict=True):
        for (name, _), tags in zip(layers, layer_tags(ex, layers), strict=True):
            gold.append(qualified(tags, name))
            pred.append(qualified(p.layers[name].tags, name))
    return gold, pred


def flat_tags(spans: Sequence[Span], n_words: int) -> list[str]:
    """The IOB2 tags of the flat view of ``spans`` (:func:`nerforge.data.layers.flatten`: the outermost)."""
    from nerforge.data.layers import flatten
    from nerforge.data.schemes import spans_to_tags

    return spans_to_tags(flatten(spans), n_words, "iob2")


def evaluate_spans(
    gold: Sequence[Sequence[Span]],
    pred: Sequence[Sequence[Span]],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
) -> EvalResult:
    """Strict span scores of nested entities in one layer (a span head's), as an :class:`EvalResult`: every gold
    span against every predicted one, per type and pooled; the token accuracy is the flat views'
    (``gold_tags``/``pred_tags``, the outermost entities). For flat spans it equals :func:`evaluate` of the tags.

    >>> r = evaluate_spans([[Span(0, 3, "ORG"), Span(0, 1, "LOC")]], [[Span(0, 3, "ORG")]],
    ...                    [["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-ORG", "I-ORG"]])
    >>> (r.micro.tp, r.micro.fn, r.per_type["LOC"].recall)
    (1, 1, 0.0)
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    flat = evaluate(gold_tags, pred_tags)
    per_type = score_spans(gold, pred)
    return EvalResult(micro=pooled(per_type), macro=average_scores(per_type, weighted=False),
                      weighted=average_scores(per_type, weighted=True), per_type=per_type,
                      token_accuracy=flat.token_accuracy, n_sentences=flat.n_sentences, n_tokens=flat.n_tokens)  # fmt: skip
