"""What training needs from the head options: class weights for the loss and the head's entries for
``nerforge.json`` (dev metrics decode through :class:`~nerforge.modeling.plan.HeadPlan`, as prediction does).

Class weights (``model.class_weights = "balanced"``): each tag's weight is ``1/sqrt(count)`` over the labelled
positions of the training windows, scaled so that their mean over those positions is 1 (the loss keeps its scale).
They reach the loss through the ``Trainer``'s ``compute_loss_func`` (:class:`WeightedTokenLoss`), so the saved
model is unchanged by them: a plain head stays a plain Hugging Face directory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch

from nerforge.alignment import IGNORE_INDEX, EncodedWindow
from nerforge.model_dir import CRF_META_KEY, HEAD_META_KEY, LAYER_CRFS_META_KEY
from nerforge.modeling.head import HeadSpec

logger = logging.getLogger(__name__)

CLASS_WEIGHT_SCHEMES = ("balanced",)


def tag_counts(encoded: Sequence[EncodedWindow], num_tags: int) -> list[int]:
    """How often each tag id labels a position of the windows."""
    counts = [0] * num_tags
    for enc in encoded:
        for label in enc.labels or ():
            if label != IGNORE_INDEX:
                counts[label] += 1
    return counts


def balanced_weights(counts: Sequence[int]) -> list[float]:
    """``1/sqrt(count)`` per tag (a tag never seen counts as seen once), scaled to a mean of 1 over the positions.

    >>> [round(w, 3) for w in balanced_weights([90, 10])]
    [0.833, 2.5]
    """
    raw = [1.0 / math.sqrt(max(c, 1)) for c in counts]
    total = sum(counts)
    if total == 0:
        return [1.0] * len(counts)
    mean = sum(c * w for c, w in zip(counts, raw, strict=True)) / total
    return [w / mean for w in raw]


class WeightedTokenLoss:
    """A ``compute_loss_func`` for the ``Trainer``: class-weighted cross-entropy over the labelled positions,
    summed and divided by the number of labelled positions (of the whole accumulated batch when the Trainer says)."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = torch.tensor(list(weights), dtype=torch.float32)

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = self.weights.to(logits.device)
        total = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            labels.reshape(-1),
            weight=weight,
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        count = num_items_in_batch if num_items_in_batch is not None else (labels != IGNORE_INDEX).sum()
        if isinstance(count, torch.Tensor):
            count = count.to(total.device)
        return total / count if float(count) > 0 else total * 0.0


def loss_function(
    scheme: str | None, encoded: Sequence[EncodedWindow], tags: Sequence[str]
) -> WeightedTokenLoss | None:
    """The Trainer's ``compute_loss_func`` for ``model.class_weights`` (``None``: the model's own loss)."""
    if scheme is None:
        return None
    if scheme not in CLASS_WEIGHT_SCHEMES:
        raise ValueError(f"unknown class weights {scheme!r}; known: {', '.join(CLASS_WEIGHT_SCHEMES)}")
    weights = balanced_weights(tag_counts(encoded, len(tags)))
    logger.info("class weights: %s", ", ".join(f"{t} {w:.2f}" for t, w in zip(tags, weights, strict=True)))
    return WeightedTokenLoss(weights)


def head_meta(spec: HeadSpec, model: Any) -> tuple[str, dict[str, Any]]:
    """``ModelMeta.head`` and the ``ModelMeta.extra`` entries of a trained model (``{}`` for the plain head)."""
    if spec.is_plain:
        return spec.name, {}
    extra: dict[str, Any] = {HEAD_META_KEY: spec.to_dict()}
    crf = getattr(model, "crf", None)
    if crf is not None:
        extra[CRF_META_KEY] = crf.export_scores()
    others = getattr(model, "layer_crfs", None)
    if others:
        extra[LAYER_CRFS_META_KEY] = [c.export_scores() for c in others]
    return spec.name, extra
