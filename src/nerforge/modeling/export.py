"""The ONNX graph of a model: which module to trace and which inputs it takes.

A plain Hugging Face token classifier is traced with inputs ``input_ids`` and ``attention_mask`` and output
``logits``. A :class:`~nerforge.modeling.model.NerforgeTokenClassifier` with word features gets ``word_features``
(int64, ``(batch, seq)``) as a third input; with a CRF, ``logits`` are its emissions and Viterbi runs in numpy after
ONNX Runtime (:class:`~nerforge.modeling.plan.HeadPlan`), with the scores kept in ``nerforge.json``.
:func:`graph_module` decides; the exporter in :mod:`nerforge.export` only traces what it is given.
"""

from __future__ import annotations

from typing import Any

from nerforge.model_dir import INPUT_NAMES
from nerforge.modeling.plan import FEATURES_KEY


def uses_word_features(model: Any) -> bool:
    """Whether ``model`` takes a ``word_features`` input (a nerforge head with shape features)."""
    return getattr(model, "shape", None) is not None and hasattr(model, "spec")


def graph_module(model: Any) -> tuple[Any, tuple[str, ...]]:
    """The module to trace for ``model`` (tensor inputs in, ``logits`` out) and the names of its inputs, in order
    (those of the model's :class:`~nerforge.modeling.plan.HeadPlan`)."""
    if uses_word_features(model):
        return features_logits_module(model), (*INPUT_NAMES, FEATURES_KEY)
    return logits_module(model), INPUT_NAMES


def logits_module(model: Any) -> Any:
    """Wrap a Hugging Face token-classification model so its graph has two tensor inputs and one output."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly().eval()


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
