"""Prediction with a nerforge head: the engine's windows, plus context, word features and CRF decoding.

:class:`HeadRuntime` plugs into :class:`nerforge.prediction.engine.Engine` (``Engine(head=...)``) for any model whose
``nerforge.json`` names a head other than ``"softmax"``. For each chunk of sentences it

1. windows each sentence exactly as the plain engine does, and with ``context_sentences`` fills the rest of each
   window with the neighbouring sentences given by the caller (:mod:`nerforge.modeling.context`; no context is
   ever predicted);
2. with shape features, passes ``features`` (the ``word_features`` input) to :meth:`Backend.logits`, computed by the
   same :func:`~nerforge.modeling.features.shape_ids` as in training;
3. decodes each window's owned words: argmax of the softmax, or Viterbi over their emissions with a CRF (numpy,
   :func:`~nerforge.modeling.crf.viterbi`, so PyTorch and ONNX Runtime decode alike). A word's score is the softmax
   probability of its chosen tag under its own emission scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nerforge.alignment import EncodedWindow, encode_window, windows_for, word_pieces
from nerforge.errors import ModelError
from nerforge.modeling.context import SentenceContext, encode_in_context
from nerforge.modeling.features import feature_row, shape_ids
from nerforge.modeling.head import CRF_META_KEY, HeadSpec
from nerforge.modeling.viterbi import viterbi

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrfScores:
    """Start, end and (constrained) transition scores of a trained CRF."""

    start: np.ndarray
    end: np.ndarray
    transitions: np.ndarray

    @classmethod
    def from_dict(cls, raw: Any, num_tags: int) -> CrfScores:
        try:
            scores = cls(*(np.asarray(raw[k], dtype=np.float64) for k in ("start", "end", "transitions")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"nerforge.json: invalid extra.{CRF_META_KEY}: {exc}") from None
        if scores.start.shape != (num_tags,) or scores.transitions.shape != (num_tags, num_tags):
            raise ModelError(f"nerforge.json: extra.{CRF_META_KEY} does not have {num_tags} tags")
        return scores


class HeadRuntime:
    """Windows, inputs and decoding for a head (see the module docstring).

    Args:
        spec: the head options.
        crf: the CRF scores (required when ``spec.crf``).
    """

    def __init__(self, spec: HeadSpec, crf: CrfScores | None = None) -> None:
        if spec.crf and crf is None:
            raise ModelError(f"head {spec.name!r} has a CRF but no CRF scores")
        self.spec = spec
        self.crf = crf

    @classmethod
    def for_model(cls, meta: Any, model: Any = None) -> HeadRuntime | None:
        """The runtime of ``meta``'s head (``None`` for the plain head); CRF scores come from ``model`` when it has a
        CRF (PyTorch), else from ``nerforge.json`` (``extra.crf``, e.g. an ONNX export)."""
        spec = HeadSpec.from_meta(meta)
        if spec.is_plain:
            return None
        crf = None
        if spec.crf:
            module = getattr(model, "crf", None)
            raw = module.export_scores() if module is not None else meta.extra.get(CRF_META_KEY)
            if raw is None:
                raise ModelError(f"head {spec.name!r}: nerforge.json has no CRF scores (extra.{CRF_META_KEY})")
            crf = CrfScores.from_dict(raw, len(meta.tags))
        return cls(spec, crf)

    def encode(
        self, engine: Any, examples: Sequence[Sequence[str]], contexts: Sequence[SentenceContext | None] | None
    ) -> list[EncodedWindow]:
        """Windows of ``examples`` (with context when the head uses it and ``contexts`` are given)."""
        meta, specials = engine.meta, engine.specials
        pieces = word_pieces(engine.tokenizer, examples)
        windows, stats = windows_for(pieces, meta.max_length, meta.stride, specials)
        engine.stats.add(stats)
        if stats.long_words:
            logger.warning(
                "%d word(s) have more subword pieces than fit in %d; only their first pieces are used",
                stats.long_words,
                meta.max_length,
            )
        if not self.spec.context_sentences or contexts is None:
            return [encode_window(w, pieces[w.example], specials, meta.max_length) for w in windows]
        ctx = [c if c is not None else SentenceContext() for c in contexts]
        left = word_pieces(engine.tokenizer, [c.left for c in ctx])
        right = word_pieces(engine.tokenizer, [c.right for c in ctx])
        return [
            encode_in_context(w, pieces[w.example], left[w.example], right[w.example], specials, meta.max_length)
            for w in windows
        ]

    def predict(
        self, engine: Any, examples: Sequence[Sequence[str]], contexts: Sequence[SentenceContext | None] | None = None
    ) -> list[Any]:
        """:class:`~nerforge.prediction.engine.WordPrediction` of each (non-empty) example."""
        from nerforge.prediction.engine import batches_by_length, checked_logits, decode_words, pad_batch, softmax

        encoded = self.encode(engine, examples, contexts)
        shapes = [shape_ids(words) for words in examples] if self.spec.uses_shape else None
        tag_ids = [np.full(len(words), -1, dtype=np.int64) for words in examples]
        probs = [np.zeros(len(words), dtype=np.float64) for words in examples]
        num_tags = len(engine.meta.tags)
        for batch in batches_by_length([len(e.input_ids) for e in encoded], engine.batch_size):
            ids, mask = pad_batch([encoded[k].input_ids for k in batch], engine.pad_id)
            inputs: dict[str, np.ndarray] = {}
            if shapes is not None:
                features = np.zeros_like(ids)
                for row, k in enumerate(batch):
                    enc = encoded[k]
                    features[row, : len(enc.input_ids)] = feature_row(
                        enc.first_piece_of, len(enc.input_ids), shapes[enc.window.example]
                    )
                inputs["features"] = features
            logits = checked_logits(engine.backend.logits(ids, mask, **inputs), ids, num_tags)
            for row, k in enumerate(batch):
                enc = encoded[k]
                if not enc.first_piece_of:
                    continue
                words = np.fromiter(enc.first_piece_of.keys(), dtype=np.int64)
                positions = np.fromiter(enc.first_piece_of.values(), dtype=np.int64)
                emissions = logits[row, positions].astype(np.float64)
                p = softmax(emissions)
                if self.crf is not None:
                    best = viterbi(emissions, self.crf.start, self.crf.end, self.crf.transitions)
                else:
                    best = p.argmax(axis=-1)
                ex = enc.window.example
                tag_ids[ex][words] = best
                probs[ex][words] = p[np.arange(len(best)), best]
        return [decode_words(t.tolist(), p.tolist(), engine.meta.tags) for t, p in zip(tag_ids, probs, strict=True)]
