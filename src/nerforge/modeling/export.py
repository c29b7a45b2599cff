"""ONNX export of a nerforge head: the graph gets the word features as a third input.

A :class:`~nerforge.modeling.model.NerforgeTokenClassifier` with word features is exported with inputs
``input_ids``, ``attention_mask`` and ``word_features`` (int64, ``(batch, seq)``) and the usual ``logits`` output
(the CRF's emissions when there is a CRF: Viterbi runs in numpy after ONNX Runtime, with the scores kept in
``nerforge.json``). Every other model keeps the two-input graph of :func:`nerforge.export.onnx.logits_module`.
"""

from __future__ import annotations

from typing import Any


def uses_word_features(model: Any) -> bool:
    """Whether ``model`` takes a ``word_features`` input (a nerforge head with shape features)."""
    return getattr(model, "shape", None) is not None and hasattr(model, "spec")


def features_logits_module(model: Any) -> Any:
    """Wrap ``model`` so its graph has three tensor inputs (ids, mask, word features) and one output (logits)."""
    import torch

    class FeatureLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_features: torch.Tensor
        ) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, word_features=word_features).logits

    return FeatureLogits().eval()
