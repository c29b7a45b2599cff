"""The ONNX graph of a model: which module to trace and which inputs it takes.

A plain Hugging Face token classifier is traced with inputs ``input_ids`` and ``attention_mask`` and output
``logits``. A :class:`~nerforge.modeling.model.NerforgeTokenClassifier` with word features gets ``word_features``
(int64, ``(batch, seq)``) as a third input; with a CRF, ``logits`` are its emissions and Viterbi runs in numpy after
ONNX Runtime (:class:`~nerforge.modeling.plan.HeadPlan`), with the scores kept in ``nerforge.json``. A span head
takes ``span_ends`` (int64, ``(batch, seq, max_width)``) too.
:func:`graph_module` decides; the exporter in :mod:`nerforge.export` only traces what it is given.
"""

from __future__ import annotations

from typing import Any

from nerforge.model_dir import INPUT_NAMES, SPAN_ENDS_INPUT
from nerforge.modeling.plan import FEATURES_KEY


def uses_word_features(model: Any) -> bool:
    """Whether ``model`` takes a ``word_features`` input (a nerforge head with shape features)."""
    return getattr(model, "shape", None) is not None and hasattr(model, "spec")


def span_width(model: Any) -> int:
    """A span head's ``max_width`` (its ``span_ends`` input's last axis); 0 for any other model."""
    return int(model.spec.max_width) if getattr(model, "spans", None) is not None and hasattr(model, "spec") else 0


def graph_module(model: Any) -> tuple[Any, tuple[str, ...]]:
    """The module to trace for ``model`` (tensor inputs in, ``logits`` out) and the names of its inputs, in order
    (those of the model's :class:`~nerforge.modeling.plan.HeadPlan`): ``input_ids``, ``attention_mask``, then
    ``word_features`` with shape features and ``span_ends`` for a span head."""
    extras = (
        *((FEATURES_KEY,) if uses_word_features(model) else ()),
        *((SPAN_ENDS_INPUT,) if span_width(model) else ()),
    )
    return named_logits_module(model, extras), (*INPUT_NAMES, *extras)


def example_inputs(model: Any, ids: Any, mask: Any) -> tuple[Any, ...]:
    """Inputs to trace ``model``'s graph with, for ``ids``/``mask`` of shape ``(batch, seq)``: word features of ones,
    span ends of zeros ``(batch, seq, max_width)`` (any position is a valid end)."""
    import torch

    _, names = graph_module(model)
    out = [ids, mask]
    for name in names[2:]:
        width = span_width(model)
        out.append(
            torch.zeros((*ids.shape, width), dtype=torch.long) if name == SPAN_ENDS_INPUT else torch.ones_like(ids)
        )
    return tuple(out)


def named_logits_module(model: Any, extras: tuple[str, ...]) -> Any:
    """Wrap ``model`` so its graph takes ``input_ids``, ``attention_mask`` and up to two more inputs (``extras``,
    by name, in order) as tensors and gives one output (logits)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, first: torch.Tensor | None = None,
                    second: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
            given = dict(zip(extras, (first, second), strict=False))
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **given).logits

    if len(extras) > 2:
        raise ValueError(f"a graph takes at most two inputs beside ids and mask, not {extras}")
    return Logits().eval()


def logits_module(model: Any) -> Any:
    """Wrap a Hugging Face token-classification model so its graph has two tensor inputs and one output."""
    return named_logits_module(model, ())
