""":class:`NerforgeTokenClassifier`: a Hugging Face encoder plus nerforge's head (shape features, CRF), as a
transformers ``PreTrainedModel`` with its own config class (:class:`NerforgeHeadConfig`), so that saving, loading
and the Trainer's checkpoints are transformers' own.

A model directory of this class holds ``config.json`` (``model_type: nerforge_token_classifier``, with the
encoder's whole config under ``encoder``, the head's settings under ``head`` and the labels) and *all* weights in
``model.safetensors``. ``transformers.pipeline`` does not know the model type, so it refuses the directory loudly
instead of loading the encoder under a random head. Only nerforge's own class loads it (:func:`load_model`), building
the encoder from its config (``AutoModel.from_config``, no remote code) and checking that every weight fits.
Directories written before this class (``encoder/config.json`` beside the weights) still load.

Forward: ``input_ids``, ``attention_mask``, ``word_features`` (shape ids, 0 where a position is not a word's first
subword) and optional ``labels`` → ``TokenClassifierOutput(loss, logits)``. The logits are per-position tag scores
(CRF emissions with a CRF); the loss is the CRF's negative log-likelihood over the labelled positions, or the
cross-entropy over them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from nerforge.alignment import IGNORE_INDEX
from nerforge.errors import ModelError
from nerforge.model_dir import ENCODER_DIR, WEIGHTS_FILE
from nerforge.modeling.blocks import MIX_SCALE, MIX_START, LayerAdapter, ShapeProjection, SpanScorer, balanced_sum
from nerforge.modeling.crf import LinearChainCRF
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.own_tops import OwnTopLayers

logger = logging.getLogger(__name__)

MODEL_TYPE = "nerforge_token_classifier"


class NerforgeHeadConfig(PretrainedConfig):
    """The config of a :class:`NerforgeTokenClassifier`: the encoder's config (as a dict with its ``model_type``),
    the head's settings (:meth:`HeadSpec.to_dict`) and, as any token classifier's, ``id2label``/``label2id``."""

    model_type = MODEL_TYPE

    def __init__(
        self, encoder: dict[str, Any] | None = None, head: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.encoder = dict(encoder or {})
        self.head = dict(head or {})
        super().__init__(**kwargs)

    @property
    def spec(self) -> HeadSpec:
        return HeadSpec.from_dict(self.head, "config.json head")

    def encoder_config(self) -> Any:
        from transformers import AutoConfig

        values = dict(self.encoder)
        model_type = values.pop("model_type", None)
        if not model_type:
            raise ModelError("config.json: the encoder's config has no model_type")
        return AutoConfig.for_model(model_type, **values)


class NerforgeTokenClassifier(PreTrainedModel):
    """An encoder (any ``AutoModel``) with dropout, optional shape features, a linear layer and an optional CRF.

    Args:
        config: the head config (encoder config, head settings, labels).
        encoder: the encoder, already loaded (fine-tuning); ``None`` builds it from ``config.encoder`` (loading).
    """

    config_class = NerforgeHeadConfig
    base_model_prefix = "nerforge"
    _supports_sdpa = True

    def __init__(self, config: NerforgeHeadConfig, encoder: Any = None) -> None:
        super().__init__(config)
        spec = config.spec
        if not spec.custom_model:
            raise ModelError(f"head {spec.name!r} is the plain Hugging Face head; build it with transformers")
        if encoder is None:
            encoder = _without_pooler(lambda **kw: _encoder_from_config(config, **kw))
        self.encoder = encoder
        self.spec = spec
        tags = [config.id2label[i] for i in range(len(config.id2label))]
        enc = encoder.config
        hidden = int(enc.hidden_size)
        rate = getattr(enc, "classifier_dropout", None)
        if rate is None:
            rate = getattr(enc, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(float(rate))
        self.shape = ShapeProjection(spec.shape_dim) if spec.uses_shape else None
        inputs = hidden + (spec.shape_dim if self.shape is not None else 0)
        width = sum(spec.layer_sizes) if spec.layers else len(tags)  # a layered head: every layer's logits, in order
        self.spans = None
        if spec.span:  # scores per span class (none + each type), after the span representation
            if spec.max_width < 1:
                raise ModelError("a span head needs max_width >= 1 (set from the training data)")
            self.spans = SpanScorer(inputs, hidden, spec.max_width)
            inputs, width = hidden, sum(1 for t in tags if t.startswith("B-")) + 1
        self.classifier = nn.Linear(inputs, width)
        self.layer_adapters = (nn.ModuleList(LayerAdapter(inputs, spec.layer_adapter) for _ in spec.layers)
                               if spec.layers and spec.layer_adapter else None)  # fmt: skip
        self.layer_mix = None
        if spec.layers and spec.layer_mix:  # a row of mixing logits per layer over (embeddings, layer 1, ...)
            depth = getattr(enc, "num_hidden_layers", None)
            if not isinstance(depth, int) or depth < 1:
                raise ModelError("model.head.layer_mix needs an encoder whose config gives num_hidden_layers")
            self.layer_mix = nn.Parameter(torch.zeros(len(spec.layers), depth + 1))
        # every layer after the first: its own copy of the encoder's top transformer layers
        self.own_tops = (OwnTopLayers(encoder, spec.own_top_layers, len(spec.layers) - 1)
                         if spec.layers and spec.own_top_layers else None)  # fmt: skip
        first = list(spec.layers[0][1]) if spec.layers else tags
        self.crf = LinearChainCRF(first) if spec.crf else None
        # the other layers' CRFs (a layered head): the first layer's stays ``crf``, so a flat model's weights keep
        # their names
        self.layer_crfs = nn.ModuleList(LinearChainCRF(list(t)) for _, t in spec.layers[1:]) if spec.crf else None
        # each layer's running loss size (model.head.balance_layers); not saved: training state, not weights
        self.register_buffer("_layer_loss_sizes", torch.zeros(max(1, len(spec.layers))), persistent=False)
        self._std = float(getattr(enc, "initializer_range", 0.02))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise the head's own layers only (the encoder comes pretrained, or from saved weights)."""
        if module is getattr(self, "classifier", None):
            nn.init.normal_(module.weight, std=self._std)
            nn.init.zeros_(module.bias)
        elif module is self:  # transformers hands over leaf modules only: the head's own parameters are set here
            for adapter in self.layer_adapters or ():
                nn.init.normal_(adapter.down.weight, std=self._std)
                nn.init.zeros_(adapter.down.bias)
                nn.init.zeros_(adapter.up.weight)  # the adapter starts as the identity
                nn.init.zeros_(adapter.up.bias)
            # loaded weights carry transformers' _is_hf_initialized flag: the torch.nn.init calls above skip them by
            # themselves (transformers guards those functions while loading), a plain in-place write would not
            if self.layer_mix is not None and not getattr(self.layer_mix, "_is_hf_initialized", False):
                with torch.no_grad():
                    self.layer_mix.zero_()
                    self.layer_mix[:, -1] = MIX_START / MIX_SCALE

    @property
    def num_tags(self) -> int:
        return int(self.classifier.out_features)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.encoder.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        word_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        span_ends: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        **_: Any,
    ) -> Any:
        from transformers.modeling_outputs import TokenClassifierOutput

        mixing = self.layer_mix is not None
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask,
                  "output_hidden_states": output_hidden_states or mixing}  # fmt: skip
        own_views = None
        if self.own_tops is not None:
            encoded, own_views = self.own_tops.encode(self.encoder, **inputs)
        else:
            encoded = self.encoder(**inputs)
        states = encoded.hidden_states if output_hidden_states else None  # (embeddings, layer 0, layer 1, ...)
        shape = None
        if self.shape is not None:
            shape = self.shape(word_features if word_features is not None else torch.zeros_like(input_ids))

        def features(hidden: torch.Tensor) -> torch.Tensor:
            hidden = self.dropout(hidden)
            return hidden if shape is None else torch.cat([hidden, shape], dim=-1)

        if mixing or own_views is not None:
            views = own_views if own_views is not None else self._mixed(encoded.hidden_states)
            logits = self._layer_logits([features(view) for view in views])
        else:
            hidden = features(encoded.last_hidden_state)
            if self.spans is not None:
                return self._span_forward(hidden, span_ends, labels)
            logits = self.classifier(hidden) if self.layer_adapters is None else self._layer_logits(hidden)
        loss = None
        if labels is not None and self.spec.layers:
            loss = self._layered_loss(logits, labels)
        elif labels is not None:
            if self.crf is not None:
                loss = self.crf.loss(logits, labels)
            else:
                loss = nn.functional.cross_entropy(
                    logits.view(-1, self.num_tags).float(), labels.view(-1), ignore_index=IGNORE_INDEX
                )
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=states)

    def _span_forward(self, hidden: torch.Tensor, span_ends: torch.Tensor | None, labels: torch.Tensor | None) -> Any:
        """A span head: logits ``(batch, seq, max_width * classes)``; the loss is the cross-entropy over the labelled
        spans (``labels``: ``(batch, seq, max_width)``)."""
        from transformers.modeling_outputs import TokenClassifierOutput

        if span_ends is None or self.spans is None:
            raise ModelError("a span head needs the span_ends input (nerforge.modeling.plan.HeadPlan.batch_inputs)")
        scores = self.classifier(self.dropout(self.spans(hidden, span_ends)))
        classes = scores.shape[-1]
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(scores.reshape(-1, classes).float(), labels.reshape(-1),
                                               ignore_index=IGNORE_INDEX)  # fmt: skip
        return TokenClassifierOutput(loss=loss, logits=scores.flatten(2))

    def _mixed(self, states: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """Each layer's weighted sum of the encoder's hidden states (``model.head.layer_mix``):
        ``(layers, batch, seq, hidden)``."""
        expected = 0 if self.layer_mix is None else int(self.layer_mix.shape[1])
        if states is None or len(states) != expected:
            got = 0 if states is None else len(states)
            raise ModelError(f"model.head.layer_mix expects {expected} hidden states from the encoder, got {got}")
        weights = torch.softmax(self.layer_mix.float() * MIX_SCALE, dim=-1)
        stacked = torch.stack(tuple(states), dim=0)
        return torch.einsum("ls,sbth->lbth", weights.to(stacked.dtype), stacked)

    def _layer_logits(self, views: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Each layer's logits from its own view of the encoder output (one tensor: the same for every layer),
        through its adapter where it has one, and its slice of the classifier, in layer order."""
        parts = []
        offset = 0
        adapters = list(self.layer_adapters) if self.layer_adapters is not None else [None] * len(self.spec.layers)
        for layer, (size, adapter) in enumerate(zip(self.spec.layer_sizes, adapters, strict=True)):
            view = views if isinstance(views, torch.Tensor) else views[layer]
            rows = slice(offset, offset + size)
            parts.append(nn.functional.linear(view if adapter is None else adapter(view), self.classifier.weight[rows],
                                              self.classifier.bias[rows]))  # fmt: skip
            offset += size
        return torch.cat(parts, dim=-1)

    def _layered_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The sum of each layer's loss on its slice of the logits; ``labels`` hold every layer's tag id at once
        (:func:`nerforge.modeling.layered.combine_ids`)."""
        from nerforge.modeling.layered import split_ids

        losses = []
        offset = 0
        crfs = [self.crf, *(self.layer_crfs or ())]
        for layer, (size, ids) in enumerate(zip(self.spec.layer_sizes, split_ids(labels, self.spec.layer_sizes),
                                                strict=True)):  # fmt: skip
            part = logits[..., offset : offset + size]
            offset += size
            crf = crfs[layer] if self.crf is not None else None
            if crf is not None:
                losses.append(crf.loss(part, ids).float())
            else:
                losses.append(nn.functional.cross_entropy(part.reshape(-1, size).float(), ids.reshape(-1),
                                                          ignore_index=IGNORE_INDEX))  # fmt: skip
        if self.spec.layer_weights and self.training:  # model.head.layer_weights: a layer not named weighs 1
            losses = [loss * self.spec.layer_weight(name)
                      for loss, name in zip(losses, self.spec.layer_names, strict=True)]  # fmt: skip
        if not (self.spec.balance_layers and self.training):
            return torch.stack(losses).sum()
        return balanced_sum(losses, self._layer_loss_sizes)


def encoder_config(source: str | Path | Any) -> Any:
    """The encoder's transformers config, whatever the head: of a model directory or hub id (its ``config.json``;
    for a nerforge head model the encoder's config kept inside it, or ``encoder/config.json`` of the first layout),
    or of a loaded model's ``config``. Callers need not know whether a model has a nerforge head.

    Raises:
        OSError, ValueError: as ``AutoConfig.from_pretrained`` for a source that has no usable config.
    """
    from transformers import AutoConfig

    if isinstance(source, NerforgeHeadConfig):
        return source.encoder_config()
    if not isinstance(source, (str, Path)):
        return source
    path = Path(source)
    if (path / "config.json").is_file():
        raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("model_type") == MODEL_TYPE:
            return NerforgeHeadConfig.from_pretrained(path, local_files_only=True).encoder_config()
    elif (path / ENCODER_DIR / "config.json").is_file():
        return AutoConfig.from_pretrained(path / ENCODER_DIR, local_files_only=True, trust_remote_code=False)
    return AutoConfig.from_pretrained(str(source), trust_remote_code=False)


def _encoder_from_config(config: NerforgeHeadConfig, **kwargs: Any) -> Any:
    from transformers import AutoModel

    return AutoModel.from_config(config.encoder_config(), **kwargs)


def head_config(spec: HeadSpec, encoder_config: Any, tags: Sequence[str]) -> NerforgeHeadConfig:
    """The :class:`NerforgeHeadConfig` of a model with head ``spec`` over an encoder with ``encoder_config``."""
    return NerforgeHeadConfig(
        encoder=encoder_config.to_dict(),
        head=spec.to_dict(),
        id2label=dict(enumerate(tags)),
        label2id={t: i for i, t in enumerate(tags)},
    )


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
            use_safetensors=_has_safetensors(base),
            trust_remote_code=False,
        )
    encoder = _without_pooler(
        lambda **kw: AutoModel.from_pretrained(
            base, use_safetensors=_has_safetensors(base), trust_remote_code=False, **kw
        )
    )
    model = NerforgeTokenClassifier(head_config(spec, encoder.config, tags), encoder=encoder)
    if model.own_tops is not None:
        model.own_tops.check(model.encoder)
    return model


def _has_safetensors(base: str) -> bool:
    """Whether a base model directory has safetensors weights (single or sharded). Without them its PyTorch
    ``.bin`` weights are read, which transformers does with ``torch.load(weights_only=True)``: tensors only, no code
    runs. nerforge itself always writes safetensors."""
    directory = Path(base)
    return not directory.is_dir() or any(directory.glob("*.safetensors"))


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
    except (OSError, ValueError, KeyError, *_weights_errors()) as exc:
        raise _load_error(directory, exc) from None


def load_trained(directory: str | Path, meta: Any) -> Any:
    """The PyTorch model of a trained model directory, as its ``nerforge.json`` (``meta``) describes it, whatever
    its head (see :func:`load_model`).

    Raises:
        ModelError: malformed head settings, missing or unreadable files, or weights that do not fit.
    """
    return load_model(directory, HeadSpec.from_meta(meta), meta.tags)


def load_head_model(directory: str | Path, spec: HeadSpec, tags: Sequence[str]) -> NerforgeTokenClassifier:
    """Load a :class:`NerforgeTokenClassifier` saved with ``save_pretrained`` (or in the earlier layout with
    ``encoder/config.json``), checking that its head and labels are the ones ``nerforge.json`` names.

    Raises:
        ModelError: missing files, or weights or settings that do not fit the head (names and shapes are checked).
    """
    directory = Path(directory)
    if (directory / ENCODER_DIR / "config.json").is_file():
        return _load_legacy(directory, spec, tags)
    if not (directory / WEIGHTS_FILE).is_file():
        raise ModelError(f"{directory}: {WEIGHTS_FILE} is missing; nerforge loads safetensors weights only")
    try:
        config = NerforgeHeadConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{directory}: cannot read config.json: {exc}") from None
    if config.model_type != MODEL_TYPE or config.spec != spec:
        raise ModelError(f"{directory}: config.json does not describe the head {spec.name!r} of nerforge.json")
    if [config.id2label[i] for i in range(len(config.id2label))] != list(tags):
        raise ModelError(f"{directory}: the labels of config.json differ from those of nerforge.json")
    try:
        model, info = NerforgeTokenClassifier.from_pretrained(
            directory, config=config, local_files_only=True, use_safetensors=True, output_loading_info=True
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, *_weights_errors()) as exc:
        raise _load_error(directory, exc) from None
    problems = {k: sorted(v)[:3] for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if (v := info.get(k))}
    if problems:
        raise ModelError(f"{directory}: {WEIGHTS_FILE} does not fit the head in nerforge.json ({problems})")
    return model.eval()


def _load_legacy(directory: Path, spec: HeadSpec, tags: Sequence[str]) -> NerforgeTokenClassifier:
    """A directory of the first layout: ``encoder/config.json`` and the weights, no top-level ``config.json``."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{directory}: {WEIGHTS_FILE} is missing; nerforge loads safetensors weights only")
    try:
        encoder_config = AutoConfig.from_pretrained(
            directory / ENCODER_DIR, local_files_only=True, trust_remote_code=False
        )
        encoder = _without_pooler(lambda **kw: AutoModel.from_config(encoder_config, **kw))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{directory}: cannot build the encoder from {ENCODER_DIR}/config.json: {exc}") from None
    model = NerforgeTokenClassifier(head_config(spec, encoder_config, tags), encoder=encoder)
    try:
        state = load_file(str(weights))
    except (OSError, *_weights_errors()) as exc:
        raise _load_error(directory, exc) from None
    _check_state(directory, model.state_dict(), state)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _weights_errors() -> tuple[type[BaseException], ...]:
    """What the safetensors reader raises for a damaged file (its own error type, not an ``OSError``)."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - older safetensors
        return ()
    return (SafetensorError,)


def _load_error(directory: str | Path, exc: BaseException) -> ModelError:
    """One line for weights that do not load: a damaged or truncated file is named as such (a usage problem with
    the model directory, exit code 2, not a bug)."""
    first = (str(exc).splitlines() or [""])[0]
    if isinstance(exc, _weights_errors()):
        return ModelError(
            f"{Path(directory) / WEIGHTS_FILE}: the weights file is damaged or truncated ({first}); "
            "copy the model directory again or retrain it"
        )
    return ModelError(f"{directory}: cannot load the model: {first}")


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
