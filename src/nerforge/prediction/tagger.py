"""The Python API for prediction: :class:`Tagger` loads a model directory and finds entities in raw text.

>>> tagger = Tagger.load("runs/quickstart/model")          # doctest: +SKIP
>>> tagger.predict_text("Acme hired a Python developer")    # doctest: +SKIP
[Entity(text='Python', label='SKILL', start=13, end=19, score=0.97)]
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nerforge.data.schemes import tags_to_spans
from nerforge.errors import ModelError, UsageError
from nerforge.evaluation.calibration import apply_temperature
from nerforge.model_dir import WEIGHTS_FILE, WEIGHTS_INDEX_FILE, ModelMeta, position_limit, quiet_transformers
from nerforge.modeling.plan import HeadPlan
from nerforge.prediction.engine import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_SIZE,
    Backend,
    Engine,
    TorchBackend,
    WordPrediction,
)
from nerforge.prediction.segments import SEGMENT_CHARS, iter_segments, shift
from nerforge.prediction.words import Word, get_word_tokenizer
from nerforge.types import Entity

logger = logging.getLogger(__name__)

SUPPORTED_HEADS = ("softmax",)  # plain Hugging Face heads; nerforge heads (nerforge.modeling.head) are supported too
BACKENDS = ("torch", "onnx")


def entities_from_words(
    text: str, words: Sequence[Word], prediction: WordPrediction, calibration: tuple[float, float] = (1.0, 0.0)
) -> list[Entity]:
    """Entities of one text from its words and their predicted tags; offsets point into ``text``.

    An entity runs from the start of its first word to the end of its last (the text between them included), and
    its score is the mean probability of its words, calibrated by ``calibration`` (the model's temperature and shift,
    fitted on dev: :mod:`nerforge.evaluation.calibration`).
    """
    if len(words) != len(prediction.tags):
        raise ValueError(f"{len(words)} words but {len(prediction.tags)} predicted tags")
    if prediction.layers:  # a layered model: each layer's entities, named by their layer, in text order
        found = [e for name, p in prediction.layers.items() for e in _entities(text, words, p, calibration, name)]
        order = {name: k for k, name in enumerate(prediction.layers)}
        return sorted(found, key=lambda e: (e.start, -e.end, order[e.layer]))
    if prediction.spans is not None:  # a span head: every span it kept, nested ones too
        return [_entity(text, words, s.start, s.end, s.label, s.score, calibration) for s in prediction.spans]
    return _entities(text, words, prediction, calibration, "")


def _entity(
    text: str,
    words: Sequence[Word],
    first: int,
    end: int,
    label: str,
    score: float,
    calibration: tuple[float, float],
    layer: str = "",
) -> Entity:
    start, stop = words[first].start, words[end - 1].end
    return Entity(text[start:stop], label, start, stop, round(apply_temperature(score, *calibration), 6), layer)


def _entities(
    text: str, words: Sequence[Word], prediction: WordPrediction, calibration: tuple[float, float], layer: str
) -> list[Entity]:
    out: list[Entity] = []
    for span in tags_to_spans(prediction.tags):
        scores = prediction.scores[span.start : span.end]
        out.append(
            _entity(text, words, span.start, span.end, span.label, sum(scores) / len(scores), calibration, layer)
        )
    return out


def _check_texts(texts: Any) -> None:
    if isinstance(texts, str):
        raise UsageError("predict() takes a list of texts; use predict_text() for a single string")


class Tagger:
    """Finds entities in raw text, or tags pre-split words, with a trained token-classification model.

    Build one with :meth:`load` (a model directory) or :meth:`from_model` (objects already in memory).
    """

    def __init__(self, engine: Engine, meta: ModelMeta) -> None:
        self.engine = engine
        self.meta = meta
        self._tokenize = get_word_tokenizer(meta.word_tokenizer)

    @property
    def types(self) -> list[str]:
        """The entity types the model predicts."""
        return self.meta.types

    @property
    def model_version(self) -> str:
        """The model's one version string (:attr:`~nerforge.model_dir.ModelMeta.model_version`)."""
        return self.meta.model_version

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str = "cpu",
        progress: bool | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        backend: str | None = None,
        onnx_settings: Any = None,
    ) -> Tagger:
        """Load a nerforge model directory (``nerforge train`` or ``nerforge export --onnx`` output).

        Only ``model.safetensors`` weights are read, and no code from the directory is ever run. ``backend``
        (``"torch"`` or ``"onnx"``) overrides the one ``nerforge.json`` names; ``onnx_settings``
        (:class:`~nerforge.prediction.onnx_backend.SessionSettings`) tunes an ONNX Runtime session.

        Raises:
            ModelError: ``path`` is not a nerforge model directory, or its files do not agree.
            UsageError: an unknown ``backend``.
        """
        from nerforge.model_dir import load_tokenizer
        from nerforge.modeling.model import load_trained

        directory = Path(path)
        if not directory.is_dir():
            raise ModelError(f"{directory}: model directory not found; pass the output directory of 'nerforge train'")
        meta = ModelMeta.load(directory)
        chosen = backend or meta.backend
        if chosen not in BACKENDS:
            raise UsageError(f"unknown backend {chosen!r}; choose one of: {', '.join(BACKENDS)}")
        if chosen == "onnx":
            from nerforge.prediction.onnx_backend import load_onnx_backend

            onnx = load_onnx_backend(directory, meta, device=device, settings=onnx_settings)
            with quiet_transformers():
                tokenizer = load_tokenizer(str(directory))  # as for torch (byte-level BPE needs add_prefix_space)
            return cls.from_backend(
                onnx, tokenizer, meta, batch_size=batch_size, progress=progress, chunk_size=chunk_size
            )
        if meta.backend != "torch":
            raise ModelError(
                f"{directory}: holds a {meta.backend!r} export, not PyTorch weights; load it with "
                f"backend={meta.backend!r}, or load the model directory it was exported from"
            )
        if not any((directory / name).is_file() for name in (WEIGHTS_FILE, WEIGHTS_INDEX_FILE)):
            raise ModelError(f"{directory}: {WEIGHTS_FILE} is missing; nerforge loads safetensors weights only")
        with quiet_transformers():
            tokenizer = load_tokenizer(str(directory))  # handles byte-level BPE (add_prefix_space)
            model = load_trained(directory, meta)  # never remote code
        logger.debug("loaded %s (%d tags, max_length %d)", directory, len(meta.tags), meta.max_length)
        return cls.from_model(
            model, tokenizer, meta, batch_size=batch_size, device=device, progress=progress, chunk_size=chunk_size
        )

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        meta: ModelMeta,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str = "cpu",
        progress: bool | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Tagger:
        """A tagger over a PyTorch token-classification model and its fast tokenizer already in memory."""
        check_model(model, meta)
        backend = TorchBackend(model, device=device)
        return cls.from_backend(
            backend, tokenizer, meta, batch_size=batch_size, progress=progress, chunk_size=chunk_size, model=model
        )

    @classmethod
    def from_backend(
        cls,
        backend: Backend,
        tokenizer: Any,
        meta: ModelMeta,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        model: Any = None,
    ) -> Tagger:
        """A tagger over any :class:`~nerforge.prediction.engine.Backend` (e.g. ONNX Runtime).

        A nerforge head (``meta.head`` other than ``"softmax"``) gets its runtime (context, word features, CRF
        decoding); its CRF scores come from ``model`` (the PyTorch model behind ``backend``) when given, else from
        ``nerforge.json``.
        """
        plan = HeadPlan.from_meta(meta, model)  # ModelError for an unknown head
        engine = Engine(
            backend, tokenizer, meta, batch_size=batch_size, chunk_size=chunk_size, progress=progress, plan=plan
        )
        return cls(engine, meta)

    @property
    def plan(self) -> HeadPlan:
        """How the model's head encodes and decodes."""
        return self.engine.plan

    @property
    def context_width(self) -> int:
        """Neighbouring sentences the model reads on each side (0: sentences alone)."""
        return self.plan.context_width

    # -- raw text ---------------------------------------------------------------------------------------------

    def words(self, text: str) -> list[Word]:
        """The words the tagger cuts ``text`` into (the model's word tokenizer)."""
        return self._tokenize(text)

    def iter_predict(self, texts: Iterable[str], *, total: int | None = None) -> Iterator[list[Entity]]:
        """Entities of each text, yielded in order while ``texts`` is read lazily (bounded memory: a text longer
        than :data:`~nerforge.prediction.segments.SEGMENT_CHARS` is tagged one segment at a time)."""
        calibration = self.meta.score_calibration
        found: list[Entity] = []
        for offset, segment, words, prediction, last in self._iter_segments(texts, total):
            found.extend(shift(e, offset) for e in entities_from_words(segment, words, prediction, calibration))
            if last:
                yield found
                found = []

    def iter_predict_scored(
        self, texts: Iterable[str], *, total: int | None = None
    ) -> Iterator[tuple[str, list[Word], WordPrediction]]:
        """Each text with its words and their raw predictions (tags and probabilities), in order, read lazily.

        A long text is tagged in segments as in :meth:`iter_predict`; its words and predictions are joined (no
        entity spans a cut: each segment's tags are valid IOB2 on their own)."""
        text_parts: list[str] = []
        words: list[Word] = []
        parts: list[WordPrediction] = []
        for offset, segment, seg_words, prediction, last in self._iter_segments(texts, total):
            text_parts.append(segment)
            words.extend(Word(w.text, w.start + offset, w.end + offset) for w in seg_words)
            parts.append(prediction)
            if last:
                yield "".join(text_parts), words, joined(parts)
                text_parts, words, parts = [], [], []

    def _iter_segments(
        self, texts: Iterable[str], total: int | None
    ) -> Iterator[tuple[int, str, list[Word], WordPrediction, bool]]:
        """``(offset, segment, words, prediction, last)`` for each segment of each text in order (``last``: the
        text's final segment; a short text is one segment)."""
        _check_texts(texts)
        pending: collections.deque[tuple[int, str, list[Word], bool]] = collections.deque()
        finished = 0  # texts whose last segment has been read

        def feed() -> Iterator[list[str]]:
            nonlocal finished
            for n, text in enumerate(texts):
                if not isinstance(text, str):
                    raise UsageError(f"text {n} is a {type(text).__name__}, not a str")
                for offset, segment in iter_segments(text, SEGMENT_CHARS):
                    last = offset + len(segment) == len(text)  # the segments cover the text: the last one ends it
                    words = self._tokenize(segment)
                    pending.append((offset, segment, words, last))
                    finished += last
                    yield [w.text for w in words]

        for prediction in self.engine.predict(feed(), total=total, done=lambda: finished):
            offset, segment, words, last = pending.popleft()
            yield offset, segment, words, prediction, last

    def predict(self, texts: list[str]) -> list[list[Entity]]:
        """Entities of each text, with character offsets into it (``text[e.start:e.end] == e.text``)."""
        _check_texts(texts)
        texts = list(texts)
        return list(self.iter_predict(texts, total=len(texts)))

    def predict_text(self, text: str) -> list[Entity]:
        """Entities of one text."""
        if not isinstance(text, str):
            raise UsageError(f"predict_text() takes a str, not a {type(text).__name__}")
        return self.predict([text])[0]

    # -- pre-split words --------------------------------------------------------------------------------------

    def predict_words(
        self, examples: list[list[str]], *, doc_ids: Sequence[str | None] | None = None
    ) -> list[WordPrediction]:
        """A valid IOB2 tag and a probability for every word of every example (no word is ever dropped).

        ``doc_ids`` (one per example, ``None`` for none) tell a model trained with document context which
        consecutive examples are sentences of the same document; other models ignore them.
        """
        _check_texts(examples)
        examples = list(examples)
        for n, words in enumerate(examples):
            if isinstance(words, str) or not all(isinstance(w, str) for w in words):
                raise UsageError(f"example {n} must be a list of str words")
        contexts = self.plan.contexts(examples, doc_ids)
        return list(self.engine.predict(examples, total=len(examples), contexts=contexts))

    def iter_predict_words(
        self, examples: Iterable[Sequence[str]], *, total: int | None = None
    ) -> Iterator[WordPrediction]:
        """Like :meth:`predict_words`, reading ``examples`` lazily."""
        return self.engine.predict(examples, total=total)


def joined(parts: Sequence[WordPrediction]) -> WordPrediction:
    """The predictions of consecutive segments of one text as one (a layered model's layers joined alike)."""
    tags = tuple(t for p in parts for t in p.tags)
    scores = tuple(x for p in parts for x in p.scores)
    layers = None
    if parts and parts[0].layers:
        layers = {name: joined([p.layers[name] for p in parts if p.layers]) for name in parts[0].layers}
    spans = None
    if parts and parts[0].spans is not None:  # a span head: each part's spans moved past the words before it
        spans, offset = [], 0
        for part in parts:
            spans.extend(dataclasses.replace(s, start=s.start + offset, end=s.end + offset) for s in part.spans or ())
            offset += len(part.tags)
    return WordPrediction(tags, scores, layers=layers, spans=tuple(spans) if spans is not None else None)


def check_model(model: Any, meta: ModelMeta) -> None:
    """Raise :class:`ModelError` when the model's labels or positions disagree with its metadata."""
    config = getattr(model, "config", None)
    if config is None:
        return
    num_labels = getattr(config, "num_labels", len(meta.tags))
    if num_labels != len(meta.tags):
        raise ModelError(f"the model has {num_labels} labels but its metadata lists {len(meta.tags)} tags")
    id2label = getattr(config, "id2label", None) or {}
    named = {int(k): v for k, v in id2label.items()}
    if named and all(not v.startswith("LABEL_") for v in named.values()):
        mismatched = [i for i, t in enumerate(meta.tags) if named.get(i) != t]
        if mismatched:
            i = mismatched[0]
            raise ModelError(f"label id {i} is {named.get(i)!r} in config.json but {meta.tags[i]!r} in nerforge.json")
    from nerforge.modeling.model import encoder_config

    positions = position_limit(encoder_config(config))
    if positions is not None and meta.max_length > positions:
        raise ModelError(f"max_length {meta.max_length} in nerforge.json exceeds the model's {positions} positions")
