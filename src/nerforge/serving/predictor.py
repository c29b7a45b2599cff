"""What the serving app needs from a model: ``predict(texts)`` and a description of the model.

``create_app`` takes any object of the :class:`Predictor` shape, so tests can pass a small deterministic fake and
``nerforge serve`` passes :class:`TaggerPredictor`, a thin wrapper around :class:`nerforge.prediction.Tagger`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nerforge.errors import UsageError
from nerforge.model_dir import ModelMeta
from nerforge.types import Entity

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /v1/model`` reports."""

    name: str
    tags: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    backend: str = "torch"
    base_model: str = ""
    model_version: str = ""  # ModelMeta.model_version: the one name of this model's version everywhere
    trained_with: str = ""  # the nerforge version that trained it
    layers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # a layered model: each layer's name and entity types

    @property
    def labels(self) -> list[str]:
        """The entity types (tags without their ``B-``/``I-`` prefix; of every layer), sorted."""
        every = {t.split("-", 1)[1] if "-" in t else t for t in self.tags if t != "O"}
        return sorted(every.union(*(set(types) for _, types in self.layers)))

    @classmethod
    def from_meta(cls, name: str, meta: ModelMeta, *, backend: str | None = None) -> ModelInfo:
        return cls(
            name=name,
            tags=tuple(meta.tags),
            metrics=dict(meta.metrics),
            backend=backend or meta.backend,
            base_model=meta.base_model,
            model_version=meta.model_version,
            trained_with=meta.nerforge_version,
            layers=tuple((name, tuple(sorted({t[2:] for t in tags if t != "O"}))) for name, tags in meta.layers),
        )


@runtime_checkable
class Predictor(Protocol):
    """A model the app can serve. ``predict`` is called from one worker thread at a time."""

    @property
    def info(self) -> ModelInfo: ...

    def predict(self, texts: list[str]) -> list[list[Entity]]: ...


class TaggerPredictor:
    """A :class:`nerforge.prediction.Tagger` with its model description."""

    def __init__(self, tagger: Any, info: ModelInfo) -> None:
        self._tagger = tagger
        self._info = info

    @property
    def info(self) -> ModelInfo:
        return self._info

    def predict(self, texts: list[str]) -> list[list[Entity]]:
        return self._tagger.predict(list(texts))


def load_predictor(
    path: str | Path, *, backend: str | None = None, batch_size: int = 32, threads: int | None = None
) -> TaggerPredictor:
    """Load a trained model directory for serving.

    Args:
        path: a nerforge model directory (``nerforge.json`` beside the Hugging Face files).
        backend: ``"torch"`` or ``"onnx"``; ``None`` follows the model's ``nerforge.json``.
        batch_size: texts per forward pass inside the tagger.
        threads: ONNX Runtime's intra-op threads (``None``: one per physical core); torch's are set by the caller
            (:func:`nerforge.threads.set_torch_threads`) before loading.
    """
    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    meta = ModelMeta.load(path)
    backend = backend or meta.backend
    from nerforge.prediction import Tagger
    from nerforge.prediction.heap import settle_loaded_objects

    onnx_settings = None
    if backend == "onnx":  # a worker's share of the cores (--workers, --threads), or every core
        from nerforge.prediction.onnx_backend import SessionSettings

        # the batcher tags one batch at a time: every thread works inside it
        onnx_settings = SessionSettings(threads=threads, parallel="intra")
    tagger = Tagger.load(path, batch_size=batch_size, progress=False, backend=backend,  # no progress bars in a log
                         onnx_settings=onnx_settings)  # fmt: skip
    settle_loaded_objects()  # the server keeps this model for its lifetime
    logger.info("loaded %s (%s backend, %d tags)", path, backend, len(meta.tags))
    return TaggerPredictor(tagger, ModelInfo.from_meta(Path(path).name, meta, backend=backend))
