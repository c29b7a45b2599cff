""":class:`HeadPlan`: everything a head does on either side of the model, in one object.

A head (:class:`~nerforge.modeling.head.HeadSpec`) decides how sentences become model inputs and how logits
become word tags. Both live here, and only here:

* :meth:`HeadPlan.encode`: word pieces, windows with a stride (nothing truncated, each word owned by one window),
  document context around each window when the head reads it, word features (the ``word_features`` input) when the
  head has them, and labels when training;
* :meth:`HeadPlan.batch_inputs`: every model input of a padded batch, by name (:attr:`HeadPlan.input_names`): what a
  backend (PyTorch, ONNX Runtime, a Ray worker) hands the model without knowing the head;
* :meth:`HeadPlan.decode`: each owned word's first-piece emissions → argmax, or Viterbi with a CRF (numpy, so
  PyTorch and ONNX Runtime decode alike) → a valid IOB2 tag and a probability per word.

Training's dev metrics, the prediction engine and the export's parity check all call these, so a model is encoded
and decoded one way wherever it runs. The plain softmax head is the plan with every option off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from nerforge.alignment import (
    EncodedWindow,
    SpecialTokens,
    Window,
    WindowStats,
    encode_window,
    special_tokens,
    windows_for,
    word_pieces,
)
from nerforge.errors import ModelError
from nerforge.model_dir import CRF_META_KEY, FEATURES_INPUT, INPUT_NAMES, LAYER_CRFS_META_KEY, SPAN_ENDS_INPUT
from nerforge.modeling.context import SentenceContext, encode_in_context, sentence_contexts
from nerforge.modeling.decoding import WordPrediction, decode_words, pad_batch, softmax
from nerforge.modeling.features import feature_row, shape_ids
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.span import ScoredSpan, choose_spans, span_types, window_candidates, window_rows
from nerforge.modeling.viterbi import group_size, viterbi_many

logger = logging.getLogger(__name__)

FEATURES_KEY = FEATURES_INPUT  # the model input (and dataset field) of word features

DROPPED_WINDOWS = "windows_without_labels"  # WindowStats.extra: windows that own no word with a piece


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


@dataclass
class Encoded:
    """Sentences as model windows.

    Attributes:
        lengths: words per sentence.
        windows: the windows that own at least one word with a subword piece, in sentence order.
        stats: windowing counts (``extra[DROPPED_WINDOWS]``: windows that owned no such word).
        word_features: per sentence, per word, the feature id (heads with word features), else ``None``.
        pieces: per sentence, the subword ids of each word (as the tokenizer gave them).
    """

    lengths: list[int]
    windows: list[EncodedWindow]
    stats: WindowStats
    word_features: list[list[int]] | None = None
    pieces: list[list[list[int]]] = field(default_factory=list, repr=False)  # per sentence, per word
    span_ends: list[list[int]] | None = field(default=None, repr=False)  # the span head's input, per window (flat)

    def item(self, k: int) -> dict[str, list[int]]:
        """Window ``k`` as unpadded model inputs: ``input_ids``, ``labels`` when labelled, and the head's extras."""
        enc = self.windows[k]
        item = {"input_ids": list(enc.input_ids)}
        if enc.labels is not None:
            item["labels"] = list(enc.labels)
        if self.word_features is not None:
            item[FEATURES_KEY] = feature_row(
                enc.first_piece_of, len(enc.input_ids), self.word_features[enc.window.example]
            )
        if self.span_ends is not None:  # (positions, max_width) flattened: the collator pads it per position
            item[SPAN_ENDS_INPUT] = list(self.span_ends[k])
        return item


@dataclass(frozen=True)
class HeadPlan:
    """Encode and decode for one head (see the module docstring).

    Attributes:
        spec: the head options.
        tags: IOB2 tags in id order (a layered head's first layer's; ``spec.layers`` has every layer's).
        max_length: subwords per window, special tokens included.
        stride: subwords shared by consecutive windows.
        crf: the CRF's scores (required to decode when ``spec.crf``).
    """

    spec: HeadSpec
    tags: tuple[str, ...]
    max_length: int
    stride: int
    crf: CrfScores | None = field(default=None, compare=False)
    layer_crfs: tuple[CrfScores, ...] = field(default=(), compare=False)  # a layered head's layers after the first

    @classmethod
    def from_meta(cls, meta: Any, model: Any = None) -> HeadPlan:
        """The plan of a saved model: its :class:`~nerforge.model_dir.ModelMeta`, with the CRF scores taken from
        ``model`` when it is a PyTorch model with a CRF, else from ``nerforge.json`` (an ONNX export).

        Raises:
            ModelError: an unknown head, or a CRF head without scores.
        """
        spec = HeadSpec.from_meta(meta)
        plan = cls(spec, tuple(meta.tags), int(meta.max_length), int(meta.stride))
        if not spec.crf:
            return plan
        module = getattr(model, "crf", None)
        table = meta.crf_table
        raw = module.export_scores() if module is not None else (asdict(table) if table is not None else None)
        if raw is None:
            raise ModelError(f"head {spec.name!r}: nerforge.json has no CRF scores (extra.{CRF_META_KEY})")
        plan = plan.with_crf(raw)
        if spec.layers:
            modules = getattr(model, "layer_crfs", None)
            others = [m.export_scores() for m in modules] if modules else meta.extra.get(LAYER_CRFS_META_KEY)
            if not isinstance(others, list) or len(others) != len(spec.layers) - 1:
                raise ModelError(f"head {spec.name!r}: nerforge.json lacks the CRF scores of its layers "
                                 f"(extra.{LAYER_CRFS_META_KEY})")  # fmt: skip
            plan = plan.with_layer_crfs(others)
        return plan

    def with_layer_crfs(self, raws: Sequence[Mapping[str, Any] | CrfScores]) -> HeadPlan:
        """This plan with the CRF scores of a layered head's layers after the first."""
        scores = tuple(r if isinstance(r, CrfScores) else CrfScores.from_dict(r, size)
                       for r, size in zip(raws, self.spec.layer_sizes[1:], strict=True))  # fmt: skip
        return replace(self, layer_crfs=scores)

    def with_crf(self, raw: Mapping[str, Any] | CrfScores) -> HeadPlan:
        """This plan with CRF scores (a :class:`CrfScores` or the dict that ``LinearChainCRF.export_scores`` gives)."""
        scores = raw if isinstance(raw, CrfScores) else CrfScores.from_dict(raw, len(self.tags))
        return replace(self, crf=scores)

    def for_model(self, model: Any) -> HeadPlan:
        """This plan with the current CRF scores of a PyTorch ``model`` (unchanged without a CRF)."""
        module = getattr(model, "crf", None)
        plan = self.with_crf(module.export_scores()) if self.spec.crf and module is not None else self
        others = getattr(model, "layer_crfs", None)
        if self.spec.crf and others:
            plan = plan.with_layer_crfs([m.export_scores() for m in others])
        return plan

    @property
    def types(self) -> tuple[str, ...]:
        """The entity types, in tag order (a span head's class ``k + 1`` is type ``k``)."""
        return span_types(self.tags)

    def gold_spans(self, example: Any) -> list[Any]:
        """The gold entities of ``example`` this head is scored on, comparable with
        :meth:`WordPrediction.entity_spans`: every entity in one layer for a span head, each layer's (named) for a
        layered head, the entities of the tags otherwise."""
        from nerforge.data.layers import entity_spans, one_layer
        from nerforge.data.schemes import tags_to_spans

        if self.spec.span:
            return one_layer(example, self.types)
        if self.spec.layers:
            return list(entity_spans(example))
        return list(tags_to_spans(example.tags))

    @property
    def num_outputs(self) -> int:
        """The model's logits per position: the tags of every layer; a span head's ``max_width * (types + 1)``."""
        if self.spec.span:
            return self.spec.max_width * (len(self.types) + 1)
        return sum(self.spec.layer_sizes) if self.spec.layers else len(self.tags)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model's inputs, in order (the ONNX graph's too): ``input_ids``, ``attention_mask`` and what the head
        adds (``word_features`` with shape features, ``span_ends`` for a span head)."""
        return (*INPUT_NAMES, *((FEATURES_KEY,) if self.spec.uses_shape else ()),
                *((SPAN_ENDS_INPUT,) if self.spec.span else ()))  # fmt: skip

    # -- memory (nerforge.training.memory estimates a run's peak from these) ------------------------------------

    @property
    def context_width(self) -> int:
        """Sentences of the same document the plan reads on each side of a sentence (0: none)."""
        return self.spec.context_sentences

    def plain(self) -> HeadPlan:
        """The plan of the plain head over the same tags and windows (what ``--head plain`` would train)."""
        return replace(self, spec=HeadSpec(), crf=None)

    def parameters(self, hidden: int) -> int:
        """Parameters of the head on an encoder of ``hidden`` units (classifier, shape projection, CRF scores; a span
        head's start and end projections, width embeddings and classifier)."""
        shape = self.spec.shape_dim if self.spec.uses_shape else 0
        if self.spec.span:
            width = hidden + shape
            return 2 * (width + 1) * hidden + self.spec.max_width * hidden + (hidden + 1) * (len(self.types) + 1)
        n = self.num_outputs
        return (hidden + shape + 1) * n + shape * 16 + (n * n + 2 * n if self.spec.crf else 0)

    def training_bytes_per_token(self, hidden: int = 0) -> int:
        """Bytes autograd keeps per window position for the head: the logits, their log-softmax and gradient, and
        with a CRF its forward sums (a few ``(batch, tags)`` tensors per word: linear in the tag count); a span head
        also keeps a few ``(max_width, hidden)`` span representations per position (linear in the width, never in
        the window's length)."""
        spans = 4 * 4 * self.spec.max_width * hidden if self.spec.span else 0
        return 4 * self.num_outputs * (3 + (6 if self.spec.crf else 0)) + spans

    def decode_bytes(self) -> int:
        """Transient bytes of decoding: a CRF's Viterbi step holds ``(chains, tags, tags)`` float64 candidates and
        their argmax for one group of chains (bounded, :func:`~nerforge.modeling.viterbi.group_size`); argmax decoding
        holds nothing worth counting."""
        if not self.spec.crf:
            return 0
        n = len(self.tags)
        return 3 * 8 * n * n * group_size(n)

    # -- encode -----------------------------------------------------------------------------------------------

    def contexts(
        self, sentences: Sequence[Sequence[str]], doc_ids: Sequence[str | None] | None
    ) -> list[SentenceContext] | None:
        """The neighbouring sentences of each sentence when the head reads document context (else ``None``)."""
        if not self.spec.context_sentences or doc_ids is None:
            return None
        return sentence_contexts(sentences, list(doc_ids), self.spec.context_sentences)

    def encode(
        self,
        tokenizer: Any,
        sentences: Sequence[Sequence[str]],
        *,
        contexts: Sequence[SentenceContext | None] | None = None,
        labels: Sequence[tuple[Sequence[int], Sequence[int] | None]] | None = None,
        span_gold: Sequence[np.ndarray] | None = None,
        specials: SpecialTokens | None = None,
    ) -> Encoded:
        """Windows of ``sentences`` (lists of words), ready for the model.

        Args:
            tokenizer: the model's fast tokenizer.
            sentences: the words of each sentence.
            contexts: one context per sentence (heads with document context; ignored by others).
            labels: per sentence, the label id of each word and, to label later pieces too, of each word's later
                pieces (training only; a tagger's).
            span_gold: per sentence, the span head's gold classes (:func:`nerforge.modeling.span.gold_table`;
                training only).
            specials: the tokenizer's special tokens (found from the tokenizer when ``None``).
        """
        specials = specials if specials is not None else special_tokens(tokenizer)
        pieces = word_pieces(tokenizer, sentences)
        windows, stats = windows_for(pieces, self.max_length, self.stride, specials)
        around = self._context_pieces(tokenizer, contexts, len(sentences))
        kept: list[EncodedWindow] = []
        span_ends: list[list[int]] | None = [] if self.spec.span else None

        every_word = span_ends is not None  # every word of a window, owned or not, may end a span

        def encode_one(window: Window, ids: Sequence[int] | None, cont: Sequence[int] | None) -> EncodedWindow:
            if around is not None:
                left, right = around[0][window.example], around[1][window.example]
                return encode_in_context(window, pieces[window.example], left, right, specials, self.max_length, ids,
                                         cont, every_word)  # fmt: skip
            return encode_window(window, pieces[window.example], specials, self.max_length, ids, cont, every_word)

        for window in windows:
            ids, cont = labels[window.example] if labels is not None and not self.spec.span else (None, None)
            enc = encode_one(window, ids, cont)
            if not enc.first_piece_of:
                continue
            if span_ends is not None and enc.piece_of is not None:
                gold = span_gold[window.example] if span_gold is not None else None
                ends, span_labels = window_rows(enc.first_piece_of, enc.piece_of, pieces[window.example],
                                                window.end, len(enc.input_ids), self.spec.max_width, gold)  # fmt: skip
                span_ends.append(ends)
                enc = replace(enc, labels=span_labels)
            kept.append(enc)
        stats.extra[DROPPED_WINDOWS] = len(windows) - len(kept)
        features = [shape_ids(words) for words in sentences] if self.spec.uses_shape else None
        return Encoded([len(s) for s in sentences], kept, stats, features, pieces, span_ends)

    def _context_pieces(
        self, tokenizer: Any, contexts: Sequence[SentenceContext | None] | None, n: int
    ) -> tuple[list[list[list[int]]], list[list[list[int]]]] | None:
        if not self.spec.context_sentences or contexts is None:
            return None
        ctx = [c if c is not None else SentenceContext() for c in contexts]
        if len(ctx) != n:
            raise ValueError(f"{len(ctx)} contexts for {n} sentences")
        return word_pieces(tokenizer, [c.left for c in ctx]), word_pieces(tokenizer, [c.right for c in ctx])

    def batch_inputs(self, encoded: Encoded, rows: Sequence[int], pad_id: int) -> dict[str, np.ndarray]:
        """Every input (:attr:`input_names`) of a batch of windows ``rows``, right-padded with ``pad_id``: int64
        arrays of shape ``(len(rows), longest window)``, what a :class:`~nerforge.prediction.engine.Backend` takes."""
        ids, mask = pad_batch([encoded.windows[k].input_ids for k in rows], pad_id)
        inputs = dict(zip(INPUT_NAMES, (ids, mask), strict=True))
        if encoded.word_features is not None:
            features = np.zeros_like(ids)
            for row, k in enumerate(rows):
                enc = encoded.windows[k]
                values = feature_row(enc.first_piece_of, len(enc.input_ids), encoded.word_features[enc.window.example])
                features[row, : len(values)] = values
            inputs[FEATURES_KEY] = features
        if encoded.span_ends is not None:
            width = self.spec.max_width
            ends = np.zeros((*ids.shape, width), dtype=np.int64)
            for row, k in enumerate(rows):
                values = np.asarray(encoded.span_ends[k], dtype=np.int64).reshape(-1, width)
                ends[row, : len(values)] = values
            inputs[SPAN_ENDS_INPUT] = ends
        return inputs

    # -- decode -----------------------------------------------------------------------------------------------

    def decode(self, encoded: Encoded, logits: Sequence[np.ndarray]) -> list[WordPrediction]:
        """Per-word tags and probabilities of every sentence, from the logits of each of ``encoded.windows``
        (``logits[k]``: shape ``(positions, num_tags)``, at least as many positions as window ``k`` has pieces).

        Raises:
            ModelError: a CRF head without CRF scores.
        """
        if self.spec.crf and self.crf is None:
            raise ModelError(f"head {self.spec.name!r} has a CRF but no CRF scores")
        if self.spec.layers:
            return self._decode_layers(encoded, logits)
        if self.spec.span:
            return self._decode_spans(encoded, logits)
        tag_ids = [np.full(n, -1, dtype=np.int64) for n in encoded.lengths]
        probs = [np.zeros(n, dtype=np.float64) for n in encoded.lengths]
        chains = []
        for enc, window_logits in zip(encoded.windows, logits, strict=True):
            words = np.fromiter(enc.first_piece_of.keys(), dtype=np.int64)
            positions = np.fromiter(enc.first_piece_of.values(), dtype=np.int64)
            chains.append((words, np.asarray(window_logits)[positions].astype(np.float64)))
        if self.crf is not None:
            paths = viterbi_many([e for _, e in chains], self.crf.start, self.crf.end, self.crf.transitions)
        else:
            paths = [e.argmax(axis=-1) for _, e in chains]
        for enc, (words, emissions), best in zip(encoded.windows, chains, paths, strict=True):
            p = softmax(emissions)
            ex = enc.window.example
            tag_ids[ex][words] = best
            probs[ex][words] = p[np.arange(len(best)), best]
        return [decode_words(t.tolist(), p.tolist(), self.tags) for t, p in zip(tag_ids, probs, strict=True)]

    def _decode_layers(self, encoded: Encoded, logits: Sequence[np.ndarray]) -> list[WordPrediction]:
        """A layered head: each layer decoded on its slice of the logits with its own CRF; the first layer's
        prediction carries every layer's in ``layers``."""
        if self.spec.crf and len(self.layer_crfs) != len(self.spec.layers) - 1:
            raise ModelError(f"head {self.spec.name!r} has CRFs but not the scores of every layer")
        flat_spec = self.spec.model_copy(update={"layers": ()})
        per_layer: dict[str, list[WordPrediction]] = {}
        offset = 0
        crfs = [self.crf, *self.layer_crfs]
        for k, (name, tags) in enumerate(self.spec.layers):
            size = len(tags)
            layer_plan = replace(self, spec=flat_spec, tags=tags, crf=crfs[k] if self.spec.crf else None, layer_crfs=())
            per_layer[name] = layer_plan.decode(encoded, [np.asarray(x)[..., offset : offset + size] for x in logits])
            offset += size
        first = per_layer[self.spec.layers[0][0]]
        return [WordPrediction(p.tags, p.scores, layers={name: preds[i] for name, preds in per_layer.items()})
                for i, p in enumerate(first)]  # fmt: skip

    def _decode_spans(self, encoded: Encoded, logits: Sequence[np.ndarray]) -> list[WordPrediction]:
        """A span head: each window's candidate spans (those of its owned words), chosen per sentence
        (:func:`nerforge.modeling.span.choose_spans`); the words' tags are the outermost spans' (the flat view), the
        prediction's ``spans`` every span kept."""
        types = self.types
        width = self.spec.max_width
        candidates: list[list[ScoredSpan]] = [[] for _ in encoded.lengths]
        outside = [np.zeros(n, dtype=np.float64) for n in encoded.lengths]
        has_piece = [np.zeros(n, dtype=bool) for n in encoded.lengths]
        for enc, window_logits in zip(encoded.windows, logits, strict=True):
            words = list(enc.first_piece_of)
            positions = list(enc.first_piece_of.values())
            rows = np.asarray(window_logits)[positions].astype(np.float64).reshape(len(words), width, len(types) + 1)
            ex = enc.window.example
            found, none = window_candidates(softmax(rows), words, enc.window.end, encoded.lengths[ex], types)
            candidates[ex].extend(found)
            outside[ex][words] = none
            has_piece[ex][words] = True
        out = []
        for n, cands, none, seen in zip(encoded.lengths, candidates, outside, has_piece, strict=True):
            kept = choose_spans(cands, self.spec.keep_crossing)
            out.append(span_prediction(n, kept, none, seen))
        return out


def span_prediction(n_words: int, kept: Sequence[ScoredSpan], outside: np.ndarray, seen: np.ndarray) -> WordPrediction:
    """A span head's :class:`WordPrediction` of one sentence: the outermost of ``kept`` as IOB2 tags (each word
    scored by its span's probability, a word outside every span by its probability of starting none), all of
    ``kept`` in ``spans``."""
    from nerforge.data.layers import flatten
    from nerforge.data.schemes import spans_to_tags

    score_of = {(s.start, s.end, s.label): s.score for s in kept}
    flat = flatten(s.span for s in kept)
    tags = spans_to_tags(flat, n_words, "iob2")
    scores = [float(outside[w]) if seen[w] else 0.0 for w in range(n_words)]
    for span in flat:
        for w in range(span.start, span.end):
            scores[w] = score_of[(span.start, span.end, span.label)]
    return WordPrediction(tuple(tags), tuple(scores), spans=tuple(kept))
