"""The prediction engine: lists of words in, one IOB2 tag and probability per word out.

Steps for each chunk of examples (at most ``chunk_size`` at a time, so memory stays bounded for any input size):

1. word pieces of every word (:func:`nerforge.alignment.word_pieces`);
2. windows over examples longer than ``meta.max_length`` with ``meta.stride`` overlap
   (:func:`nerforge.alignment.windows_for`): nothing is truncated, and each word is predicted only by the window
   that owns it;
3. windows sorted by length and cut into batches of ``batch_size`` (little padding), run through a
   :class:`Backend` under ``torch.inference_mode()``;
4. each word takes the argmax of its first piece and that tag's probability; words without a piece take a tag from
   their neighbours (:func:`nerforge.alignment.fill_empty_words`); the tags are repaired into valid IOB2 by
   conlleval-style decoding (:func:`nerforge.data.schemes.tags_to_spans`).

Results come back in input order. The model itself is behind :class:`Backend`, so another runtime (ONNX) plugs in
by implementing one method.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nerforge.alignment import (
    SpecialTokens,
    WindowStats,
    encode_window,
    fill_empty_words,
    special_tokens,
    windows_for,
    word_pieces,
)
from nerforge.data.schemes import spans_to_tags, tags_to_spans
from nerforge.errors import ModelError
from nerforge.model_dir import ModelMeta

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
DEFAULT_CHUNK_SIZE = 1024


def idle_cpu_threads() -> int:
    """CPU threads worth giving torch now: the usable cores minus the current load, at least 1.

    More threads than free cores makes every operation wait for the busiest core (a tiny model then runs ten times
    slower on a loaded 2-core machine), so command-line runs default to this.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return max(1, cpus)
    return max(1, min(cpus, round(cpus - busy)))


def set_cpu_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads (``None``: :func:`idle_cpu_threads`); returns the number set.

    Process-wide: meant for command-line entry points, not for library code.
    """
    import torch

    n = threads if threads is not None else idle_cpu_threads()
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    logger.debug("torch uses %d CPU thread(s)", n)
    return n


class Backend(Protocol):
    """Something that turns padded batches of piece ids into token-classification logits.

    Models with word features (:mod:`nerforge.modeling`) also get ``features``, an int64 array shaped like
    ``input_ids`` (the model's ``word_features`` input); it is only ever passed to backends of such models.
    """

    def logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, features: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits of shape ``(batch, seq_len, num_tags)`` for int64 arrays of shape ``(batch, seq_len)``."""
        ...


class TorchBackend:
    """A PyTorch token-classification model (``AutoModelForTokenClassification``) as a :class:`Backend`.

    Args:
        model: the model; it is put in eval mode and moved to ``device``.
        device: a torch device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
    """

    def __init__(self, model: Any, *, device: str = "cpu") -> None:
        import torch

        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ModelError(f"invalid device {device!r}: {exc}") from None
        self.model = model.to(self.device).eval()

    def logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, features: np.ndarray | None = None
    ) -> np.ndarray:
        import torch

        extra = {} if features is None else {"word_features": torch.from_numpy(features).to(self.device)}
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(input_ids).to(self.device),
                attention_mask=torch.from_numpy(attention_mask).to(self.device),
                **extra,
            )
            return out.logits.float().cpu().numpy()


@dataclass(frozen=True)
class WordPrediction:
    """Predictions for one example: a valid IOB2 tag and a probability for each word.

    ``scores[i]`` is the model's probability of the tag it chose for word ``i`` (before IOB2 repair, which only
    changes a prefix). A word that got no subword piece has no probability of its own: it takes the score of the
    previous word when it continues that word's entity, otherwise 0.0.
    """

    tags: tuple[str, ...]
    scores: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.tags)


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_size``, longest first, so each batch pads little.

    >>> batches_by_length([3, 9, 1, 7], 2)
    [[1, 3], [0, 2]]
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into ``(input_ids, attention_mask)`` int64 arrays."""
    width = max((len(s) for s in sequences), default=0)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def checked_logits(logits: Any, ids: np.ndarray, num_tags: int) -> np.ndarray:
    """``logits`` as an array, or a :class:`ModelError` unless its shape is (batch, sequence, ``num_tags``)."""
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[:2] != ids.shape or logits.shape[2] != num_tags:
        raise ModelError(
            f"the model returned logits of shape {logits.shape}; expected {(*ids.shape, num_tags)} "
            f"({num_tags} tags in the model metadata)"
        )
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def decode_words(tag_ids: Sequence[int], probs: Sequence[float], tags: Sequence[str]) -> WordPrediction:
    """Turn per-word argmax ids (``-1``: the word got no piece) into a :class:`WordPrediction` with valid IOB2."""
    raw = [tags[i] if i >= 0 else "" for i in tag_ids]
    filled = fill_empty_words(raw)
    scores = list(probs)
    for i, tag_id in enumerate(tag_ids):
        if tag_id < 0:
            scores[i] = scores[i - 1] if i > 0 and filled[i] != "O" else 0.0
    repaired = spans_to_tags(tags_to_spans(filled), len(filled), "iob2")
    return WordPrediction(tuple(repaired), tuple(float(s) for s in scores))


class Engine:
    """Tags lists of words with a token-classification model (see the module docstring).

    Args:
        backend: the model runtime.
        tokenizer: the model's Hugging Face *fast* tokenizer (word ids are needed).
        meta: the model's metadata; ``tags``, ``max_length`` and ``stride`` are used.
        batch_size: windows per forward pass.
        chunk_size: examples read from the input at a time.
        progress: show a progress bar on stderr; ``None`` shows one only when stderr is a terminal, and only once
            a run has lasted a second.
        head: windows, inputs and decoding of a nerforge head (:class:`nerforge.modeling.runtime.HeadRuntime`);
            ``None`` for the plain softmax head.
    """

    def __init__(
        self,
        backend: Backend,
        tokenizer: Any,
        meta: ModelMeta,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: bool | None = None,
        head: Any = None,
    ) -> None:
        if batch_size < 1 or chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be at least 1")
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError("the model's tokenizer is not a fast tokenizer; nerforge needs word ids from a fast one")
        self.backend = backend
        self.tokenizer = tokenizer
        self.meta = meta
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.progress = progress
        self.head = head
        self.specials: SpecialTokens = special_tokens(tokenizer)
        if meta.max_length <= self.specials.count:
            raise ModelError(f"max_length {meta.max_length} leaves no room for words next to the special tokens")
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad) if pad is not None else 0
        self.stats = WindowStats()
        # Long inputs are windowed here, so the tokenizer's "longer than the maximum" warning does not apply.
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True

    def predict(
        self, examples: Iterable[Sequence[str]], *, total: int | None = None, contexts: Iterable[Any] | None = None
    ) -> Iterator[WordPrediction]:
        """Predict every example, in input order, reading ``chunk_size`` examples at a time.

        Args:
            examples: lists of words (any iterable, consumed lazily).
            total: the number of examples when known, for the progress bar.
            contexts: one :class:`nerforge.modeling.context.SentenceContext` (or ``None``) per example, read along
                with ``examples``; used only by a head with document context.
        """
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else sys.stderr.isatty()
        bar = tqdm(total=total, unit="text", disable=not show, delay=0 if self.progress else 1.0, leave=False)
        try:
            iterator = iter(examples)
            context_iter = iter(contexts) if contexts is not None else None
            while True:
                chunk = [list(words) for words in itertools.islice(iterator, self.chunk_size)]
                if not chunk:
                    break
                around = list(itertools.islice(context_iter, len(chunk))) if context_iter is not None else None
                yield from self.predict_chunk(chunk, contexts=around)
                bar.update(len(chunk))
        finally:
            bar.close()

    def predict_chunk(
        self, examples: Sequence[Sequence[str]], *, contexts: Sequence[Any] | None = None
    ) -> list[WordPrediction]:
        """Predict one chunk of examples held in memory together (``contexts``: see :meth:`predict`)."""
        results: list[WordPrediction | None] = [None] * len(examples)
        nonempty = [i for i, words in enumerate(examples) if words]
        for i, words in enumerate(examples):
            if not words:
                results[i] = WordPrediction((), ())
        if nonempty:
            batch = [examples[i] for i in nonempty]
            if self.head is not None:
                around = [contexts[i] if i < len(contexts) else None for i in nonempty] if contexts else None
                predictions = self.head.predict(self, batch, around)
            else:
                predictions = self._predict_nonempty(batch)
            for i, prediction in zip(nonempty, predictions, strict=True):
                results[i] = prediction
        return [r for r in results if r is not None]

    def _predict_nonempty(self, examples: Sequence[Sequence[str]]) -> list[WordPrediction]:
        pieces = word_pieces(self.tokenizer, examples)
        windows, stats = windows_for(pieces, self.meta.max_length, self.meta.stride, self.specials)
        self.stats.add(stats)
        if stats.long_words:
            logger.warning(
                "%d word(s) have more subword pieces than fit in %d; only their first pieces are used",
                stats.long_words,
                self.meta.max_length,
            )
        encoded = [encode_window(w, pieces[w.example], self.specials, self.meta.max_length) for w in windows]
        tag_ids = [np.full(len(words), -1, dtype=np.int64) for words in examples]
        probs = [np.zeros(len(words), dtype=np.float64) for words in examples]
        num_tags = len(self.meta.tags)
        for batch in batches_by_length([len(e.input_ids) for e in encoded], self.batch_size):
            ids, mask = pad_batch([encoded[k].input_ids for k in batch], self.pad_id)
            logits = checked_logits(self.backend.logits(ids, mask), ids, num_tags)
            for row, k in enumerate(batch):
                enc = encoded[k]
                if not enc.first_piece_of:
                    continue
                words = np.fromiter(enc.first_piece_of.keys(), dtype=np.int64)
                positions = np.fromiter(enc.first_piece_of.values(), dtype=np.int64)
                p = softmax(logits[row, positions].astype(np.float64))
                best = p.argmax(axis=-1)
                ex = enc.window.example
                tag_ids[ex][words] = best
                probs[ex][words] = p[np.arange(len(best)), best]
        return [decode_words(t.tolist(), p.tolist(), self.meta.tags) for t, p in zip(tag_ids, probs, strict=True)]
