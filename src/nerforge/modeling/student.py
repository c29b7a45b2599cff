"""A smaller model cut from a trained one, and the loss that teaches it: the model side of ``nerforge distill``.

* :func:`spread_layers` chooses which of the teacher's transformer layers the student keeps: spread evenly from the
  first to the last (6 → 3 keeps 0, 2, 5; DistilBERT kept every other layer of BERT). Keeping the last layer keeps
  the representation the copied classifier (and CRF) was trained on.
* :func:`shrink` builds the student: the teacher's class and config with fewer layers, built fresh from that config
  (as loading the saved student will build it) and given the teacher's weights for everything it keeps: the
  embeddings, the kept layers (renumbered), the classifier, the shape projection and the CRF.
* :func:`soft_targets` turns a model's logits into word-level distributions at a temperature: the softmax of the
  emissions, or, with a CRF, each word's marginal distribution under the CRF (forward-backward), which is what the
  CRF itself believes about each word.
* :func:`distillation_loss` is ``T² · KL(teacher ‖ student)`` between those distributions (Hinton et al. 2015),
  averaged like the head's own loss: per word for a softmax head, per window (summed over its words) for a CRF.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nerforge.errors import ModelError
from nerforge.modeling.crf import pack_positions


def spread_layers(total: int, keep: int) -> list[int]:
    """``keep`` layer indices of ``total``, spread evenly from the first to the last, in order, no repeats.

    >>> spread_layers(6, 3), spread_layers(12, 4), spread_layers(6, 1)
    ([0, 2, 5], [0, 4, 7, 11], [5])
    """
    if not 1 <= keep <= total:
        raise ModelError(f"a student keeps 1 to {total} of the teacher's {total} layers, not {keep}")
    if keep == 1:
        return [total - 1]
    return [round(i * (total - 1) / (keep - 1) - 1e-9) for i in range(keep)]


def layer_stack(model: nn.Module) -> tuple[str, int]:
    """The qualified name and length of the model's stack of transformer layers: the first ``ModuleList`` whose
    length is the encoder config's layer count (``encoder.layer`` for BERT-like models, ``transformer.layer`` for
    DistilBERT, ``layers`` for others)."""
    total = _layer_count(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == total and total > 0:
            return name, total
    raise ModelError(f"cannot find the {total} transformer layers of {type(model).__name__} to choose from")


def _encoder_config(model: nn.Module) -> Any:
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "config") and hasattr(model.config, "head"):
        return encoder.config  # nerforge's head model: the encoder's own config
    return model.config


def _layer_count(model: nn.Module) -> int:
    return int(getattr(_encoder_config(model), "num_hidden_layers", 0) or 0)


def shrink(model: nn.Module, keep: Sequence[int]) -> nn.Module:
    """A copy of ``model`` with only the transformer layers ``keep`` (teacher indices, increasing), built from a config
    that says so, with the teacher's weights for everything kept.

    Raises:
        ModelError: the layers cannot be found, ``keep`` is not a valid choice, or the weights do not fit.
    """
    name, total = layer_stack(model)
    keep = list(keep)
    if not keep or sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= total:
        raise ModelError(f"layers to keep must be increasing indices in 0..{total - 1}, got {keep}")
    student = _rebuilt(model, len(keep))
    state = {}
    prefix = name + "."
    for key, value in model.state_dict().items():
        if not key.startswith(prefix):
            state[key] = value
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if int(index) in keep:
            state[f"{prefix}{keep.index(int(index))}.{rest}"] = value
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"the student's weights do not fit (missing {sorted(missing)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]})")
    return student


def _rebuilt(model: nn.Module, layers: int) -> nn.Module:
    """A fresh model of ``model``'s class whose config has ``layers`` transformer layers (random weights)."""
    from nerforge.modeling.model import NerforgeTokenClassifier

    config = copy.deepcopy(model.config)
    if isinstance(model, NerforgeTokenClassifier):
        encoder = dict(config.encoder)
        key = "num_hidden_layers" if "num_hidden_layers" in encoder else _layers_key(model.encoder.config)
        encoder[key] = layers
        config.encoder = encoder
        return NerforgeTokenClassifier(config)
    config.num_hidden_layers = layers  # attribute_map sends it to n_layers / num_layers where a family names it so
    return type(model)(config)


def _layers_key(config: Any) -> str:
    mapped = getattr(config, "attribute_map", {}).get("num_hidden_layers")
    return mapped or "num_hidden_layers"


def model_crf(model: nn.Module) -> Any:
    """The CRF of a model (unwrapped from a distributed wrapper), or ``None`` for a softmax head."""
    return getattr(getattr(model, "module", model), "crf", None)


def soft_targets(logits: torch.Tensor, mask: torch.Tensor, temperature: float, crf: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Word distributions at ``temperature`` over the ``mask`` positions of each window, packed to the front.

    Returns:
        ``probs`` ``(batch, n, num_tags)`` and ``chain_mask`` ``(batch, n)`` (which packed rows are words).
    """
    packed, chain_mask, _ = pack_positions(logits, mask)
    if crf is not None:
        rows = chain_mask.any(dim=1)
        probs = torch.zeros_like(packed, dtype=torch.float32)
        if bool(rows.any()):
            probs[rows] = crf.marginals(packed[rows], chain_mask[rows], temperature)
        return probs, chain_mask
    return torch.softmax(packed.float() / temperature, dim=-1), chain_mask


def distillation_loss(
    student_logits: torch.Tensor, mask: torch.Tensor, teacher_probs: torch.Tensor, temperature: float, crf: Any = None
) -> torch.Tensor:
    """``T² · KL(teacher ‖ student)`` over the word positions ``mask``.

    Args:
        student_logits: ``(batch, seq, num_tags)``.
        mask: ``(batch, seq)`` bool: the word positions the teacher's distributions are for.
        teacher_probs: ``(batch, m, num_tags)``, the teacher's distributions of those positions packed to the front
            (``m`` at least the most positions in a row; extra rows ignored).
        temperature: ``T``.
        crf: the student's CRF, if it has one (then its marginals are compared, summed per window).
    """
    if not bool(mask.any()):
        return student_logits.sum() * 0.0
    student, chain_mask = soft_targets(student_logits, mask, temperature, crf)
    n = student.shape[1]
    teacher = teacher_probs[:, :n].float().to(student.device)
    eps = 1e-8
    kl = (teacher * (torch.log(teacher + eps) - torch.log(student + eps))).sum(dim=-1) * chain_mask
    scale = temperature * temperature
    if crf is not None:
        rows = chain_mask.any(dim=1)
        return scale * kl.sum(dim=1)[rows].mean()
    return scale * kl.sum() / chain_mask.sum()
