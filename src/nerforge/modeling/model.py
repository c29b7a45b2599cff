""":class:`NerforgeTokenClassifier`: a Hugging Face encoder plus nerforge's head (shape features, CRF).

A model directory of this class holds the encoder's Hugging Face config in ``encoder/config.json`` and *all* weights
(encoder and head) in ``model.safetensors``; ``nerforge.json`` names the head and its settings
(:class:`~nerforge.modeling.head.HeadSpec`). There is deliberately no ``config.json`` at the top: ``transformers``
cannot run this head, so ``pipeline(...)`` fails loudly instead of loading the encoder under a random head.
:func:`load_head_model` builds the encoder from its config (``AutoModel.from_config``, no remote code) and loads the
safetensors weights strictly.

Forward: ``input_ids``, ``attention_mask``, ``word_features`` (shape ids, 0 where a position is not a word's first
subword) and optional ``labels`` → ``TokenClassifierOutput(loss, logits)``. The logits are per-position tag scores
(CRF emissions with a CRF); the loss is the CRF's negative log-likelihood over the labelled positions, or the
cross-entropy over them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nerforge.alignment import IGNORE_INDEX
from nerforge.errors import ModelError
from nerforge.model_dir import ENCODER_DIR, WEIGHTS_FILE
from nerforge.modeling.crf import LinearChainCRF
from nerforge.modeling.features import NUM_SHAPE_FLAGS
from nerforge.modeling.head import HeadSpec

logger = logging.getLogger(__name__)



class ShapeProjection(nn.Module):
    """Shape ids ``(batch, seq)`` → unpacked 0/1 flags → ``tanh(linear)`` of size ``dim``; 0 ids give zeros."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(NUM_SHAPE_FLAGS, dim, bias=False)
        self.register_buffer("powers", 2 ** torch.arange(NUM_SHAPE_FLAGS, dtype=torch.long), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        bits = torch.remainder(torch.div(ids.unsqueeze(-1), self.powers, rounding_mode="floor"), 2)
        return torch.tanh(self.linear(bits.to(self.linear.weight.dtype)))


class NerforgeTokenClassifier(nn.Module):
    """An encoder (any ``AutoModel``) with dropout, optional shape features, a linear layer and an optional CRF.

    Args:
        encoder: the Hugging Face encoder; its config gets the labels (``id2label``/``label2id``).
        spec: the head options.
        tags: IOB2 tags in id order.
    """

    def __init__(self, encoder: Any, spec: HeadSpec, tags: Sequence[str]) -> None:
        super().__init__()
        if not spec.custom_model:
            raise ModelError(f"head {spec.name!r} is the plain Hugging Face head; build it with transformers")
        self.encoder = encoder
        self.spec = spec
        self.config = encoder.config
        self.config.id2label = dict(enumerate(tags))
        self.config.label2id = {t: i for i, t in enumerate(tags)}
        hidden = int(self.config.hidden_size)
        rate = getattr(self.config, "classifier_dropout", None)
        if rate is None:
            rate = getattr(self.config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(float(rate))
        self.shape = ShapeProjection(spec.shape_dim) if spec.uses_shape else None
        self.classifier = nn.Linear(hidden + (spec.shape_dim if self.shape is not None else 0), len(tags))
        self.crf = LinearChainCRF(tags) if spec.crf else None
        std = float(getattr(self.config, "initializer_range", 0.02))
        nn.init.normal_(self.classifier.weight, std=std)
        nn.init.zeros_(self.classifier.bias)

    @property
    def num_tags(self) -> int:
        return int(self.classifier.out_features)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        word_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> Any:
        from transformers.modeling_outputs import TokenClassifierOutput

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = self.dropout(hidden)
        if self.shape is not None:
            ids = word_features if word_features is not None else torch.zeros_like(input_ids)
            hidden = torch.cat([hidden, self.shape(ids)], dim=-1)
        logits = self.classifier(hidden)
        loss = None
        if labels is not None:
            if self.crf is not None:
                loss = self.crf.loss(logits, labels)
            else:
                loss = nn.functional.cross_entropy(
                    logits.view(-1, self.num_tags).float(), labels.view(-1), ignore_index=IGNORE_INDEX
                )
        return TokenClassifierOutput(loss=loss, logits=logits)

    def save_pretrained(self, directory: str | Path, **_: Any) -> None:
        """Write ``model.safetensors`` (all weights) and ``encoder/config.json``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(directory / ENCODER_DIR)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "nerforge_head": self.spec.name})


def build_model(spec: HeadSpec, base: str, tags: Sequence[str]) -> Any:
    """A model to fine-tune: ``base``'s encoder under the head ``spec`` (a plain ``AutoModelForTokenClassification``
    when the head needs nothing else)."""
    from transformers import AutoModel, AutoModelForTokenClassification

    id2label = dict(enumerate(tags))
    label2id = {t: i for i, t in enumerate(tags)}
    if not spec.custom_model:
        return AutoModelForTokenClassification.from_pretrained(
            base,
            num_labels=len(tags),
            id2label=id2label,
            label2id=label2id,
            use_safetensors=True,
            trust_remote_code=False,
        )
    encoder = _without_pooler(
        lambda **kw: AutoModel.from_pretrained(base, use_safetensors=True, trust_remote_code=False, **kw)
    )
    return NerforgeTokenClassifier(encoder, spec, tags)


def _without_pooler(make: Any) -> Any:
    """The encoder without its pooling layer where the architecture has one (it is unused here, and unused
    parameters upset distributed training)."""
    try:
        return make(add_pooling_layer=False)
    except TypeError:  # an architecture without a pooler option
        return make()


def load_model(directory: str | Path, spec: HeadSpec, tags: Sequence[str]) -> Any:
    """The PyTorch model of a trained model directory with head ``spec``: nerforge's own class for a head with
    word features or a CRF, else a plain ``AutoModelForTokenClassification``. Safetensors only, never remote code.

    Raises:
        ModelError: missing or unreadable files, or weights that do not fit.
    """
    if spec.custom_model:
        return load_head_model(directory, spec, tags)
    from transformers import AutoModelForTokenClassification

    try:
        return AutoModelForTokenClassification.from_pretrained(
            directory, local_files_only=True, trust_remote_code=False, use_safetensors=True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{directory}: cannot load the model: {exc}") from None


def load_head_model(directory: str | Path, spec: HeadSpec, tags: Sequence[str]) -> NerforgeTokenClassifier:
    """Load a :class:`NerforgeTokenClassifier` saved by :meth:`NerforgeTokenClassifier.save_pretrained`.

    Raises:
        ModelError: missing files, or weights that do not fit the head (names and shapes are checked strictly).
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    directory = Path(directory)
    weights, config_dir = directory / WEIGHTS_FILE, directory / ENCODER_DIR
    if not (config_dir / "config.json").is_file():
        raise ModelError(f"{directory}: {ENCODER_DIR}/config.json is missing; this {spec.name!r} model is incomplete")
    if not weights.is_file():
        raise ModelError(f"{directory}: {WEIGHTS_FILE} is missing; nerforge loads safetensors weights only")
    try:
        config = AutoConfig.from_pretrained(config_dir, local_files_only=True, trust_remote_code=False)
        encoder = _without_pooler(lambda **kw: AutoModel.from_config(config, **kw))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{directory}: cannot build the encoder from {ENCODER_DIR}/config.json: {exc}") from None
    model = NerforgeTokenClassifier(encoder, spec, tags)
    state = load_file(str(weights))
    _check_state(directory, model.state_dict(), state)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _check_state(directory: Path, expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{directory}: {WEIGHTS_FILE} does not fit the head in nerforge.json "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for key, tensor in expected.items():
        if tuple(got[key].shape) != tuple(tensor.shape):
            raise ModelError(
                f"{directory}: weight {key} has shape {tuple(got[key].shape)}, the head expects {tuple(tensor.shape)}"
            )
