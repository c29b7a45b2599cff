""":class:`HeadSpec`: which head options a model uses, from the config at training and from ``nerforge.json`` after.

``ModelMeta.head`` names the head (``"softmax"`` for the plain Hugging Face head, else e.g. ``"shape+crf+context1"``)
and ``ModelMeta.extra["head"]`` holds the spec itself. A head with word features or a CRF is a
:class:`~nerforge.modeling.model.NerforgeTokenClassifier` (loaded by nerforge only); context alone keeps the plain
architecture (the extra sentences only change the inputs), so such a model still loads in ``transformers.pipeline``
(which then tags sentences without their context).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

from nerforge.errors import ModelError
from nerforge.model_dir import HEAD_META_KEY
from nerforge.modeling.features import FEATURE_NAMES

PLAIN_HEAD = "softmax"
DEFAULT_SHAPE_DIM = 16

# The head a user gets without choosing: word-shape features and a CRF. Measured against the plain softmax head on
# every recipe of bench/accuracy.py (docs/accuracy.md) and per option in docs/accuracy-features.md.
DEFAULT_FEATURES: tuple[str, ...] = ("shape",)
DEFAULT_CRF = True
DEFAULT_HEAD = "shape+crf"  # the name of that head among HEAD_PRESETS (nerforge train --head)

# ``nerforge train --head NAME``: named heads as ``model.head`` keys. "plain" is the Hugging Face token-classification
# head, the one that loads in ``transformers.pipeline``.
HEAD_PRESETS: dict[str, dict[str, Any]] = {
    DEFAULT_HEAD: {"features": list(DEFAULT_FEATURES), "crf": DEFAULT_CRF},
    "crf": {"features": [], "crf": True},
    "shape+softmax": {"features": ["shape"], "crf": False},
    "plain": {"features": [], "crf": False},
    "span": {"features": [], "crf": False, "span": True},
    "shape+span": {"features": list(DEFAULT_FEATURES), "crf": False, "span": True},
}
SPAN_HEAD = "span"  # the head that scores spans (nested entities in one layer), not word tags
# options of a layered head (several layers of entities), each off by default and saved only when set
LAYERED_OPTIONS = ("balance_layers", "layer_adapter", "layer_mix", "layer_weights", "own_top_layers")


def head_preset(name: str) -> dict[str, Any]:
    """The ``model.head`` keys of a named head (``--head``), e.g. ``{"features": [], "crf": False}`` for ``plain``.

    Raises:
        ModelError: an unknown name (the message lists the known ones).
    """
    try:
        preset = {"span": False, **HEAD_PRESETS[name]}  # a named head is a span head or not, whatever the config said
        return {key: (list(value) if isinstance(value, list) else value) for key, value in preset.items()}
    except KeyError:
        raise ModelError(f"unknown head {name!r}; choose one of: {', '.join(HEAD_PRESETS)}") from None


class HeadSpec(BaseModel):
    """The head's options: the one declaration of them. The training config holds one (``model.head``; the flat keys
    ``model.features``, ``model.crf``, ``model.context_sentences`` of earlier configs are still read), a model
    directory stores one (``nerforge.json`` ``extra.head``) and a nerforge model's ``config.json`` carries one
    (``head``). Built with keywords only; ``HeadSpec()`` is the plain head, :meth:`for_training` the one a user gets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: tuple[str, ...] = Field(
        (), description="word features fed to the head: 'shape' (casing, digits, punctuation); [] for none"
    )
    crf: bool = Field(
        False, strict=True, description="a linear-chain CRF over the words (IOB2 transitions), Viterbi decoding"
    )
    context_sentences: int = Field(
        0,
        ge=0,
        le=8,
        strict=True,
        description="neighbouring sentences of the same document on each side, as unlabelled context",
    )
    shape_dim: int = Field(DEFAULT_SHAPE_DIM, ge=1, strict=True, description="size of the projected shape features")
    layers: tuple[tuple[str, tuple[str, ...]], ...] = Field(
        (),
        description="set from the data, not by hand: a layered model's layers of entities, each its name and "
        "IOB2 tags in output order (one tagger per layer on one encoder); () for one layer",
    )

    span: bool = Field(
        False,
        strict=True,
        description="score every span of up to max_width words for each type "
        "(nested entities in one layer; nerforge train --head span) instead of tagging words",
    )
    max_width: int = Field(
        0,
        ge=0,
        le=64,
        strict=True,
        description="a span head's longest span in words; 0 takes the longest entity of the training data",
    )
    keep_crossing: bool = Field(
        False,
        strict=True,
        description="a span head keeps predicted spans that cross "
        "another (overlap without nesting); by default the lower-scored of two is dropped",
    )

    balance_layers: bool = Field(
        False,
        strict=True,
        description="a layered head trains each layer's loss scaled to the same running size (a layer of long, "
        "hard entities otherwise outweighs the others in the shared encoder); training only",
    )

    layer_adapter: int = Field(
        0,
        ge=0,
        le=4096,
        strict=True,
        description="a layered head gives each layer a residual feed-forward block of this width over the shared "
        "encoder's output before its tagger (room for each layer to specialise; measured no better on SkillSpan, "
        "docs/benchmarks.md); 0 for none; data of one layer has no use for it",
    )

    layer_mix: bool = Field(
        False,
        strict=True,
        description="a layered head gives each layer's tagger its own learned weighting of the encoder's hidden "
        "states (the embeddings and every transformer layer, a scalar mix as in ELMo) instead of the last layer "
        "alone; starts close to the last layer (measured no better on SkillSpan, docs/benchmarks.md)",
    )

    layer_weights: tuple[tuple[str, float], ...] = Field(
        (),
        description="a layered head's loss weight per layer, by name ({knowledge = 2.0}); a layer not named weighs "
        "1 (a layer the shared encoder serves worse than a model of its own can be given more of it, at the others' "
        "expense: docs/benchmarks.md); training only",
    )

    own_top_layers: int = Field(
        0,
        ge=0,
        le=64,
        strict=True,
        description="a layered head gives each layer after the first its own copy of the encoder's top N "
        "transformer layers, trained for that layer alone (the layers below stay shared; each copy costs one "
        "transformer layer's time per window; measured no better on SkillSpan, docs/benchmarks.md); 0 for none",
    )

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        names = [name for name, _ in value]
        if len(set(names)) != len(names):
            raise ValueError(f"a layer is named twice: {names}")
        if value and (len(value) < 2 or any(not tags or tags[0] != "O" for _, tags in value)):
            raise ValueError("a layered head has at least two layers, each with 'O' as its first tag")
        return value

    @field_validator("layer_weights", mode="before")
    @classmethod
    def _weights_by_name(cls, value: Any) -> Any:
        """Given as a table (``{knowledge = 2.0}``), held as ``(name, weight)`` pairs: the spec stays hashable."""
        if isinstance(value, Mapping):
            return tuple(value.items())
        if isinstance(value, (tuple, list)):  # the pairs themselves (a spec's own model_copy, or a list of pairs)
            return value
        raise ValueError("a table of layer names and loss weights, e.g. {knowledge = 2.0}")

    @field_validator("layer_weights")
    @classmethod
    def _weights(cls, value: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        wrong = {name: weight for name, weight in value if not 0 < weight < float("inf")}
        if wrong:
            raise ValueError(f"a layer's loss weight is a positive number, got {wrong}")
        if len({name for name, _ in value}) != len(value):
            raise ValueError(f"a layer is weighed twice: {[name for name, _ in value]}")
        return value

    @field_serializer("layer_weights")
    def _weights_as_table(self, value: tuple[tuple[str, float], ...]) -> dict[str, float]:
        """Dumped as the table it is given as (a config file, ``config.resolved.yaml``, a tune trial's merge)."""
        return dict(value)

    def layer_weight(self, name: str) -> float:
        """The loss weight of the layer ``name`` (1 unless ``layer_weights`` names it)."""
        return dict(self.layer_weights).get(name, 1.0)

    def check_layer_weights(self) -> None:
        """Refuse loss weights for layers this head does not have (call once ``layers`` is set from the data).

        Raises:
            ValueError: naming the unknown layers and the known ones.
        """
        unknown = sorted({name for name, _ in self.layer_weights} - set(self.layer_names))
        if unknown and self.layers:
            raise ValueError(f"model.head.layer_weights names no layer of the data: {', '.join(unknown)} "
                             f"(the layers: {', '.join(self.layer_names)})")  # fmt: skip
        if self.layer_weights and not self.layers:
            raise ValueError("model.head.layer_weights weighs the layers of a layered model; this data trains a "
                             "model of one layer")  # fmt: skip

    @model_validator(mode="after")
    def _span_options(self) -> HeadSpec:
        if self.span and self.crf:
            raise ValueError("a span head scores spans; it has no CRF (crf = false)")
        if self.span and self.layers:
            raise ValueError("a span head holds every entity in one layer; it cannot be layered")
        if not self.span and (self.max_width or self.keep_crossing):
            raise ValueError("max_width and keep_crossing are options of the span head (span = true)")
        for option in LAYERED_OPTIONS:
            if self.span and getattr(self, option):
                raise ValueError(f"{option} is an option of a layered head; a span head has one layer")
        if self.layer_weights and self.balance_layers:
            raise ValueError("balance_layers weighs every layer alike, layer_weights by name; set one of them")
        if self.own_top_layers and self.layer_mix:
            raise ValueError("own_top_layers and layer_mix both choose what each layer reads; set one of them")
        return self

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.layers)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Each layer's tag count: the widths of its slice of the logits, in order."""
        return tuple(len(tags) for _, tags in self.layers)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown word features {unknown}; known: {', '.join(FEATURE_NAMES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a feature twice: {list(value)}")
        return value

    @classmethod
    def for_training(
        cls, given: Mapping[str, Any], *, label_all_subwords: bool = False, class_weights: str | None = None
    ) -> dict[str, Any]:
        """The head keys a training config gets: ``given`` with the defaults filled in (shape features and a CRF;
        no CRF by default when ``label_all_subwords`` or class weights, options of a softmax head, are chosen)."""
        values = dict(given)
        values.setdefault("features", list(DEFAULT_FEATURES))
        values.setdefault(
            "crf", DEFAULT_CRF and not label_all_subwords and class_weights is None and not values.get("span")
        )
        return values

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> HeadSpec:
        """A spec from its saved form (``extra.head`` of ``nerforge.json``, ``head`` of ``config.json``).

        Raises:
            ModelError: naming ``where`` and the key that is wrong.
        """
        if not isinstance(raw, Mapping):
            raise ModelError(f"{where} must be an object, got {type(raw).__name__}")
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ModelError(f"invalid {where}: {key}: {err['msg']}") from None

    def check_training(self, *, label_all_subwords: bool, class_weights: str | None) -> None:
        """Refuse training options this head cannot honour.

        Raises:
            ValueError: a CRF with ``label_all_subwords`` or with class weights.
        """
        if self.crf and label_all_subwords:
            raise ValueError("model.crf labels words (first subwords); it cannot be combined with label_all_subwords")
        if self.crf and class_weights is not None:
            raise ValueError("model.class_weights weights the softmax loss; a CRF's sequence loss takes none")
        if self.span and (label_all_subwords or class_weights is not None):
            raise ValueError(
                "the span head scores spans of words; label_all_subwords and model.class_weights are "
                "options of a word tagger"
            )
        if self.layers and class_weights is not None:
            raise ValueError("model.class_weights is for a model of one layer of entities; this data has several")

    @classmethod
    def from_meta(cls, meta: Any) -> HeadSpec:
        """From a :class:`nerforge.model_dir.ModelMeta` (``extra.head``; none is the plain head).

        Raises:
            ModelError: malformed settings, or settings that do not give the head ``meta.head`` names.
        """
        raw = meta.extra.get(HEAD_META_KEY)
        if raw is None:
            if meta.head != PLAIN_HEAD:
                raise ModelError(f"model head {meta.head!r} has no settings in nerforge.json (extra.{HEAD_META_KEY})")
            return cls()
        spec = cls.from_dict(raw, f"nerforge.json extra.{HEAD_META_KEY}")
        if spec.name != meta.head:
            raise ModelError(f"nerforge.json: head {meta.head!r} does not match its settings ({spec.name!r})")
        return spec

    @property
    def name(self) -> str:
        """``"softmax"`` for the plain head; else the parts joined by ``+`` (``"shape+crf+context1"``)."""
        parts = [*self.features, SPAN_HEAD if self.span else "crf" if self.crf else PLAIN_HEAD]
        if self.context_sentences:
            parts.append(f"context{self.context_sentences}")
        if self.layers:
            parts.append(f"layers{len(self.layers)}")
        return "+".join(parts)

    @property
    def is_plain(self) -> bool:
        """No option at all: a plain token classifier on single sentences."""
        return self.name == PLAIN_HEAD

    @property
    def custom_model(self) -> bool:
        """Whether the weights are a :class:`NerforgeTokenClassifier` rather than a plain HF token classifier."""
        return bool(self.features) or self.crf or bool(self.layers) or self.span

    @property
    def uses_shape(self) -> bool:
        return "shape" in self.features

    @property
    def library(self) -> str:
        """What loads the weights: ``"transformers"`` (a plain token classifier) or ``"nerforge"``."""
        return "nerforge" if self.custom_model else "transformers"

    def usage_note(self, model_name: str) -> list[str]:
        """Markdown lines for a model card: how (or whether) plain transformers can run a model with this head."""
        pipeline = [
            "With plain transformers:",
            "",
            "```python",
            "from transformers import pipeline",
            "",
            f'ner = pipeline("token-classification", model="{model_name}", aggregation_strategy="first")',
            'print(ner("Experience with Python and Kubernetes required."))',
            "```",
            "",
        ]
        if self.is_plain:
            return pipeline
        if not self.custom_model:
            return [
                f"The head is `{self.name}`: a plain token classifier that reads neighbouring sentences of the same "
                "document as context. nerforge adds that context (`Tagger.predict_words(..., doc_ids=...)`, "
                "`nerforge evaluate` on files with documents). With plain transformers it still loads, but tags "
                "sentences without their context:",
                *pipeline[1:],
            ]
        what = (
            f"a span head: every span of up to {self.max_width} words scored for each type, so entities nested "
            "in one another are found"
            if self.span
            else "word shape features and/or a CRF"
        )
        return [
            f"The head is `{self.name}` ({what}): the weights are a nerforge model "
            "(`config.json` of type `nerforge_token_classifier`, with the encoder's config inside, and "
            "`model.safetensors`), loaded by nerforge's own code and never through remote code. It does **not** load in `transformers.pipeline`; use nerforge, or "
            "export it with `nerforge export --onnx` for ONNX Runtime.",
            "",
        ]

    def to_dict(self) -> dict[str, Any]:
        """The saved form (``extra.head``, ``config.json`` ``head``): every key, features as a list (``layers``
        only for a layered head, so a flat model's saved form is what it was before layers existed)."""
        out = self.model_dump(mode="json")
        if not self.layers:
            out.pop("layers")
        for option in LAYERED_OPTIONS:  # saved only when set: models before them had none
            if not getattr(self, option):
                out.pop(option)
        if not self.span:  # a tagger's saved form stays what it was before the span head existed
            for key in ("span", "max_width", "keep_crossing"):
                out.pop(key)
        return out


def searched_head_keys(head: str | None, context: int | None, class_weights: str | None) -> dict[str, Any]:
    """The ``model.*`` config keys of a ``nerforge tune`` trial's head settings: a named head (``--head``), document
    context sentences, and class weights (``"balanced"``; a CRF head takes none, so it trains without them)."""
    keys: dict[str, Any] = {}
    if head is not None:
        keys.update({f"model.head.{k}": v for k, v in head_preset(head).items()})
        if keys.get("model.head.span"):  # one layer: the config's options of a layered head do not apply to it
            keys.update({f"model.head.{k}": HeadSpec.model_fields[k].default for k in LAYERED_OPTIONS})
    if context is not None:
        keys["model.head.context_sentences"] = int(context)
    if class_weights == "balanced" and keys.get("model.head.crf") is not True:
        keys["model.class_weights"] = "balanced"
        keys.setdefault("model.head.crf", False)  # class weights weight a softmax loss
    return keys
