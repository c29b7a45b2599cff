"""From logits back to words: per-word tags and probabilities, and the batching helpers every runtime shares.

Pure numpy; used by :class:`~nerforge.modeling.plan.HeadPlan` (and through it by training's dev metrics, the
prediction engine and the export's parity check), so a model is decoded the same way wherever it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nerforge.alignment import fill_empty_words
from nerforge.data.schemes import spans_to_tags, tags_to_spans
from nerforge.errors import ModelError


@dataclass(frozen=True)
class WordPrediction:
    """Predictions for one example: a valid IOB2 tag and a probability for each word.

    ``scores[i]`` is the model's probability of the tag it chose for word ``i`` (before IOB2 repair, which only
    changes a prefix). A word that got no subword piece has no probability of its own: it takes the score of the
    previous word when it continues that word's entity, otherwise 0.0. A layered model's prediction holds its first
    layer's tags here and every layer's prediction in ``layers``, by name; a span head's holds the outermost of its
    spans here and all of them, nested ones too, in ``spans`` (:class:`nerforge.modeling.span.ScoredSpan`).
    """

    tags: tuple[str, ...]
    scores: tuple[float, ...]
    layers: dict[str, WordPrediction] | None = field(default=None, compare=False)  # a layered model: every layer's
    spans: tuple[Any, ...] | None = field(default=None, compare=False)  # a span head: every ScoredSpan kept

    def __len__(self) -> int:
        return len(self.tags)

    def every_score(self) -> tuple[float, ...]:
        """The probabilities of every choice the model made: each word's, in every layer of a layered model."""
        if self.layers:
            return tuple(x for p in self.layers.values() for x in p.scores)
        return self.scores

    def entity_spans(self) -> list[Any]:
        """Every entity predicted, as :class:`~nerforge.types.Span`: a span head's spans (nested ones too), a
        layered model's entities of every layer (each with its layer), else the entities of the tags."""
        from nerforge.types import Span

        if self.spans is not None:
            return [Span(s.start, s.end, s.label) for s in self.spans]
        if self.layers:
            return [
                Span(s.start, s.end, s.label, name) for name, p in self.layers.items() for s in tags_to_spans(p.tags)
            ]
        return list(tags_to_spans(self.tags))


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_size``, longest first, so each batch pads little.

    >>> batches_by_length([3, 9, 1, 7], 2)
    [[1, 3], [0, 2]]
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into ``(input_ids, attention_mask)`` int64 arrays."""
    width = max((len(s) for s in sequences), default=0)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def checked_logits(logits: Any, ids: np.ndarray, num_tags: int) -> np.ndarray:
    """``logits`` as an array, or a :class:`ModelError` unless its shape is (batch, sequence, ``num_tags``)."""
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[:2] != ids.shape or logits.shape[2] != num_tags:
        raise ModelError(
            f"the model returned logits of shape {logits.shape}; expected {(*ids.shape, num_tags)} "
            f"({num_tags} tags in the model metadata)"
        )
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def decode_words(tag_ids: Sequence[int], probs: Sequence[float], tags: Sequence[str]) -> WordPrediction:
    """Turn per-word tag ids (``-1``: the word got no piece) into a :class:`WordPrediction` with valid IOB2.

    Words without a piece take a tag from their neighbours (:func:`nerforge.alignment.fill_empty_words`); the tags
    are then repaired into valid IOB2 by conlleval-style decoding (:func:`nerforge.data.schemes.tags_to_spans`).
    """
    raw = [tags[i] if i >= 0 else "" for i in tag_ids]
    filled = fill_empty_words(raw)
    scores = list(probs)
    for i, tag_id in enumerate(tag_ids):
        if tag_id < 0:
            scores[i] = scores[i - 1] if i > 0 and filled[i] != "O" else 0.0
    repaired = spans_to_tags(tags_to_spans(filled), len(filled), "iob2")
    return WordPrediction(tuple(repaired), tuple(float(s) for s in scores))
