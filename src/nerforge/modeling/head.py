""":class:`HeadSpec`: which head options a model uses, from the config at training and from ``nerforge.json`` after.

``ModelMeta.head`` names the head (``"softmax"`` for the plain Hugging Face head, else e.g. ``"shape+crf+context1"``)
and ``ModelMeta.extra["head"]`` holds the spec itself. A head with word features or a CRF is a
:class:`~nerforge.modeling.model.NerforgeTokenClassifier` (loaded by nerforge only); context alone keeps the plain
architecture (the extra sentences only change the inputs), so such a model still loads in ``transformers.pipeline``
(which then tags sentences without their context).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nerforge.errors import ModelError
from nerforge.modeling.features import FEATURE_NAMES

PLAIN_HEAD = "softmax"
HEAD_META_KEY = "head"  # ModelMeta.extra[HEAD_META_KEY]: HeadSpec.to_dict()
CRF_META_KEY = "crf"  # ModelMeta.extra[CRF_META_KEY]: start/end/transitions scores for numpy Viterbi
DEFAULT_SHAPE_DIM = 16


@dataclass(frozen=True)
class HeadSpec:
    """Head options.

    Attributes:
        features: word features fed to the classifier (``"shape"``).
        crf: a linear-chain CRF over the words instead of per-word softmax.
        context_sentences: sentences of the same document on each side given as unlabelled context.
        shape_dim: size of the projected shape features.
    """

    features: tuple[str, ...] = ()
    crf: bool = False
    context_sentences: int = 0
    shape_dim: int = DEFAULT_SHAPE_DIM

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in FEATURE_NAMES]
        if unknown:
            raise ModelError(f"unknown word features {unknown}; known: {', '.join(FEATURE_NAMES)}")

    @classmethod
    def from_config(cls, model: Any) -> HeadSpec:
        """From a :class:`nerforge.config.ModelConfig`."""
        return cls(tuple(model.features), bool(model.crf), int(model.context_sentences))

    @classmethod
    def from_meta(cls, meta: Any) -> HeadSpec:
        """From a :class:`nerforge.model_dir.ModelMeta` (``"softmax"`` with no spec is the plain head)."""
        raw = meta.extra.get(HEAD_META_KEY) if isinstance(meta.extra, dict) else None
        if raw is None:
            if meta.head != PLAIN_HEAD:
                raise ModelError(f"model head {meta.head!r} has no settings in nerforge.json (extra.head)")
            return cls()
        if not isinstance(raw, dict):
            raise ModelError(f"nerforge.json: extra.head must be an object, got {type(raw).__name__}")
        try:
            spec = cls(
                features=tuple(raw.get("features", ())),
                crf=bool(raw.get("crf", False)),
                context_sentences=int(raw.get("context_sentences", 0)),
                shape_dim=int(raw.get("shape_dim", DEFAULT_SHAPE_DIM)),
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(f"nerforge.json: invalid extra.head {raw!r}: {exc}") from None
        if spec.name != meta.head:
            raise ModelError(f"nerforge.json: head {meta.head!r} does not match its settings ({spec.name!r})")
        return spec

    @property
    def name(self) -> str:
        """``"softmax"`` for the plain head; else the parts joined by ``+`` (``"shape+crf+context1"``)."""
        parts = [*self.features, "crf" if self.crf else PLAIN_HEAD]
        if self.context_sentences:
            parts.append(f"context{self.context_sentences}")
        return "+".join(parts)

    @property
    def is_plain(self) -> bool:
        """No option at all: a plain token classifier on single sentences."""
        return self.name == PLAIN_HEAD

    @property
    def custom_model(self) -> bool:
        """Whether the weights are a :class:`NerforgeTokenClassifier` rather than a plain HF token classifier."""
        return bool(self.features) or self.crf

    @property
    def uses_shape(self) -> bool:
        return "shape" in self.features

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        return out
