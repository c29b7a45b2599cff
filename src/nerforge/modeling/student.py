"""A smaller model cut from a trained one, and the loss that teaches it: the model side of ``nerforge distill``.

* :func:`spread_layers` chooses which of the teacher's transformer layers the student keeps: spread evenly from the
  first to the last (6 → 3 keeps 0, 2, 5; DistilBERT kept every other layer of BERT). Keeping the last layer keeps
  the representation the copied classifier (and CRF) was trained on.
* :func:`shrink` builds the student: the teacher's class and config with fewer layers, built fresh from that config
  (as loading the saved student will build it) and given the teacher's weights for everything it keeps: the
  embeddings, the kept layers (renumbered), the classifier, the shape projection and the CRF. Optionally each kept
  layer's feed-forward block is narrowed to its most important hidden units (:func:`ffn_units`): that block holds
  two thirds of a BERT layer's weights, so narrowing it speeds up every layer that is kept, which dropping layers
  cannot (measured in docs/benchmarks.md, *Distillation*).
* :func:`soft_targets` turns a model's logits into word-level distributions at a temperature: the softmax of the
  emissions, or, with a CRF, each word's marginal distribution under the CRF (forward-backward), which is what the
  CRF itself believes about each word.
* :func:`distillation_loss` is ``T² · KL(teacher ‖ student)`` between those distributions (Hinton et al. 2015),
  averaged like the head's own loss: per word for a softmax head, per window (summed over its words) for a CRF.
* :func:`hidden_loss` compares the student's layer outputs with the teacher's kept layers' (``1 - cos`` per token):
  with three layers cut from six, the word distributions alone leave the student's inner representation free to
  drift from what the copied classifier and CRF were trained on.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nerforge.errors import ModelError
from nerforge.modeling.blocks import find_layer_stack
from nerforge.modeling.crf import LinearChainCRF, pack_positions


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
    found = find_layer_stack(model, total)
    if found is not None:
        return found[0], total
    raise ModelError(f"cannot find the {total} transformer layers of {type(model).__name__} to choose from")


def _encoder_config(model: nn.Module) -> Any:
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "config") and hasattr(model.config, "head"):
        return encoder.config  # nerforge's head model: the encoder's own config
    return model.config


def _layer_count(model: nn.Module) -> int:
    return int(getattr(_encoder_config(model), "num_hidden_layers", 0) or 0)


def shrink(model: nn.Module, keep: Sequence[int], ffn_size: int | None = None) -> nn.Module:
    """A copy of ``model`` with only the transformer layers ``keep`` (teacher indices, increasing), built from a config
    that says so, with the teacher's weights for everything kept; with ``ffn_size``, each kept layer's feed-forward
    block keeps only its ``ffn_size`` most important hidden units (:func:`ffn_units`).

    Raises:
        ModelError: the layers cannot be found, ``keep`` is not a valid choice, the feed-forward blocks cannot be found
            or are not wider than ``ffn_size``, or the weights do not fit.
    """
    name, total = layer_stack(model)
    keep = list(keep)
    if not keep or sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= total:
        raise ModelError(f"layers to keep must be increasing indices in 0..{total - 1}, got {keep}")
    layers = model.get_submodule(name)
    state = {}
    prefix = name + "."
    for key, value in model.state_dict().items():
        if not key.startswith(prefix):
            state[key] = value
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if int(index) in keep:
            state[f"{prefix}{keep.index(int(index))}.{rest}"] = value
    if ffn_size is not None:
        width = ffn_width(model)
        if not 1 <= ffn_size <= width:
            raise ModelError(f"the student's feed-forward size must be 1 to the teacher's {width}, not {ffn_size}")
        for new, old in enumerate(keep):
            up, down = ffn_pair(layers[old], _hidden_size(model), width)
            units = ffn_units(layers[old].get_submodule(up), layers[old].get_submodule(down), ffn_size)
            at = f"{prefix}{new}."
            state[f"{at}{up}.weight"] = state[f"{at}{up}.weight"][units].clone()
            if f"{at}{up}.bias" in state:
                state[f"{at}{up}.bias"] = state[f"{at}{up}.bias"][units].clone()
            state[f"{at}{down}.weight"] = state[f"{at}{down}.weight"][:, units].clone()
    student = _rebuilt(model, len(keep), ffn_size)
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"the student's weights do not fit (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    return student


# The config key of the feed-forward hidden size, by family: BERT, RoBERTa, ELECTRA, DeBERTa... (intermediate_size),
# DistilBERT (hidden_dim), BART/XLM-style (ffn_dim, encoder_ffn_dim), T5 (d_ff).
_FFN_KEYS = ("intermediate_size", "hidden_dim", "ffn_dim", "encoder_ffn_dim", "d_ff")


def _ffn_key(config: Any) -> str:
    for key in _FFN_KEYS:
        if isinstance(getattr(config, key, None), int):
            return key
    raise ModelError(
        f"cannot narrow the feed-forward blocks of a {getattr(config, 'model_type', '?')} encoder: its "
        f"config names no feed-forward size ({', '.join(_FFN_KEYS)})"
    )


def ffn_width(model: nn.Module) -> int:
    """The hidden size of the model's feed-forward blocks (e.g. 1536 for all-MiniLM-L6-v2)."""
    config = _encoder_config(model)
    return int(getattr(config, _ffn_key(config)))


def _hidden_size(model: nn.Module) -> int:
    return int(_encoder_config(model).hidden_size)


def ffn_pair(layer: nn.Module, hidden: int, width: int) -> tuple[str, str]:
    """The names, inside one transformer layer, of its feed-forward block's two linear maps: ``hidden -> width`` (up)
    and ``width -> hidden`` (down). Found by shape, so one rule serves BERT-like and DistilBERT layers alike; a gated
    block (three maps) or an ambiguous one is refused."""
    linear = [(n, m) for n, m in layer.named_modules() if isinstance(m, nn.Linear)]
    up = [n for n, m in linear if (m.in_features, m.out_features) == (hidden, width)]
    down = [n for n, m in linear if (m.in_features, m.out_features) == (width, hidden)]
    if width == hidden or len(up) != 1 or len(down) != 1:
        raise ModelError(
            f"cannot find one {hidden}->{width}->{hidden} feed-forward block in {type(layer).__name__} "
            f"(found {len(up)} up and {len(down)} down maps); this encoder's feed-forward size cannot "
            "be narrowed"
        )
    return up[0], down[0]


def ffn_units(up: nn.Linear, down: nn.Linear, size: int) -> torch.Tensor:
    """The ``size`` hidden units of a feed-forward block to keep, in their original order.

    A unit's importance is the norm of its input weights times the norm of its output weights: roughly how much it
    can change the block's output per unit of input (GELU shrinks, never amplifies), from the weights alone (no data; the distillation that
    follows retrains what is left). Units whose output weights are zero never matter and go first.
    """
    with torch.no_grad():
        score = up.weight.norm(dim=1) * down.weight.norm(dim=0)
        return torch.topk(score, size).indices.sort().values


def _rebuilt(model: nn.Module, layers: int, ffn_size: int | None = None) -> nn.Module:
    """A fresh model of ``model``'s class whose config has ``layers`` transformer layers (random weights)."""
    from nerforge.modeling.model import NerforgeTokenClassifier

    config = copy.deepcopy(model.config)
    if isinstance(model, NerforgeTokenClassifier):
        encoder = dict(config.encoder)
        key = "num_hidden_layers" if "num_hidden_layers" in encoder else _layers_key(model.encoder.config)
        encoder[key] = layers
        if ffn_size is not None:
            encoder[_ffn_key(model.encoder.config)] = ffn_size
        config.encoder = encoder
        return NerforgeTokenClassifier(config)
    config.num_hidden_layers = layers  # attribute_map sends it to n_layers / num_layers where a family names it so
    if ffn_size is not None:
        setattr(config, _ffn_key(config), ffn_size)
    return type(model)(config)


def _layers_key(config: Any) -> str:
    mapped = getattr(config, "attribute_map", {}).get("num_hidden_layers")
    return mapped or "num_hidden_layers"


def model_crf(model: nn.Module | None) -> Any:
    """The CRF of a model (unwrapped from a distributed wrapper; a CRF is its own), or ``None`` for a softmax head."""
    if model is None or isinstance(model, LinearChainCRF):
        return model
    return getattr(getattr(model, "module", model), "crf", None)


def soft_targets(
    logits: torch.Tensor, mask: torch.Tensor, temperature: float, model: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Word distributions at ``temperature`` over the ``mask`` positions of each window, packed to the front: the
    softmax of the logits, or the CRF's marginals when ``model`` (the model that gave them) has a CRF.

    Returns:
        ``probs`` ``(batch, n, num_tags)`` and ``chain_mask`` ``(batch, n)`` (which packed rows are words).
    """
    packed, chain_mask, _ = pack_positions(logits, mask)
    crf = model_crf(model)
    if crf is not None:
        rows = chain_mask.any(dim=1)
        probs = torch.zeros_like(packed, dtype=torch.float32)
        if bool(rows.any()):
            probs[rows] = crf.marginals(packed[rows], chain_mask[rows], temperature)
        return probs, chain_mask
    return torch.softmax(packed.float() / temperature, dim=-1), chain_mask


def distillation_loss(
    student_logits: torch.Tensor, mask: torch.Tensor, teacher_probs: torch.Tensor, temperature: float, model: Any = None
) -> torch.Tensor:
    """``T² · KL(teacher ‖ student)`` over the word positions ``mask``.

    Args:
        student_logits: ``(batch, seq, num_tags)``.
        mask: ``(batch, seq)`` bool: the word positions the teacher's distributions are for.
        teacher_probs: ``(batch, m, num_tags)``, the teacher's distributions of those positions packed to the front
            (``m`` at least the most positions in a row; extra rows ignored).
        temperature: ``T``.
        model: the student (with a CRF, its marginals are compared, summed per window).
    """
    if not bool(mask.any()):
        return student_logits.sum() * 0.0
    crf = model_crf(model)
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


def hidden_loss(
    student_states: Sequence[torch.Tensor], teacher_states: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """How far the student's layer outputs are from the teacher's: ``1 - cos`` between each token's vectors, averaged
    over the ``mask`` tokens and the layers (the student's layer ``j`` against the teacher's ``j``-th kept layer, as
    in patient knowledge distillation, Sun et al. 2019; the cosine, as DistilBERT's hidden-state loss, so the scale
    of a layer's outliers does not drive it).

    Args:
        student_states: one ``(batch, seq, hidden)`` tensor per student layer.
        teacher_states: ``(batch, layers, seq', hidden)``, the teacher's kept layers (``seq'`` at least ``seq``).
        mask: ``(batch, seq)``, the real (not padding) tokens.

    >>> import torch
    >>> s = [torch.ones(1, 2, 4)]
    >>> round(float(hidden_loss(s, torch.ones(1, 1, 2, 4), torch.ones(1, 2))), 4)
    0.0
    >>> round(float(hidden_loss(s, -torch.ones(1, 1, 2, 4), torch.ones(1, 2))), 4)
    2.0
    """
    if len(student_states) != teacher_states.shape[1]:
        raise ModelError(f"{len(student_states)} student layers against {teacher_states.shape[1]} teacher layers")
    weights = mask.float()
    total = weights.sum().clamp_min(1.0)
    losses = []
    for j, state in enumerate(student_states):
        target = teacher_states[:, j, : state.shape[1]].to(device=state.device, dtype=state.dtype)
        cosine = nn.functional.cosine_similarity(state, target, dim=-1, eps=1e-6)
        losses.append(((1 - cosine) * weights).sum() / total)
    return torch.stack(losses).mean()
