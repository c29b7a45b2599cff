"""The prediction engine: lists of words in, one IOB2 tag and probability per word out.

Steps for each chunk of examples (at most ``chunk_size`` at a time, so memory stays bounded for any input size):

1. the model's :class:`~nerforge.modeling.plan.HeadPlan` encodes the sentences into windows (with a stride:
   nothing is truncated, and each word is predicted only by the window that owns it; context and word features
   when the head has them);
2. windows sorted by length and cut into batches of ``batch_size`` (little padding), run through a
   :class:`Backend`;
3. the plan decodes the logits into a valid IOB2 tag and a probability per word (argmax or CRF Viterbi).

The engine knows nothing of heads: it batches what the plan encodes and hands the logits back. Results come back
in input order. The model itself is behind :class:`Backend`, so another runtime (ONNX) plugs in
by implementing one method.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from nerforge.alignment import SpecialTokens, WindowStats, special_tokens
from nerforge.errors import ModelError
from nerforge.model_dir import ModelMeta
from nerforge.modeling.decoding import (  # re-exported: the engine's public vocabulary
    WordPrediction,
    batches_by_length,
    checked_logits,
    decode_words,
    pad_batch,
    softmax,
)
from nerforge.modeling.plan import HeadPlan

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "Backend",
    "Engine",
    "TorchBackend",
    "WordPrediction",
    "batches_by_length",
    "checked_logits",
    "decode_words",
    "pad_batch",
    "softmax",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
DEFAULT_CHUNK_SIZE = 1024
CHUNK_WORDS = 65_536  # a chunk also ends once it holds this many words, so long examples do not pile up in memory


class Backend(Protocol):
    """Something that turns a padded batch of model inputs into token-classification logits.

    The inputs are the ones the model's head plan names (:attr:`~nerforge.modeling.plan.HeadPlan.input_names`):
    int64 arrays of shape ``(batch, seq_len)``, always ``input_ids`` and ``attention_mask``, and whatever else the
    head adds. A backend passes them on by name, so it needs no change for a new head.
    """

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Logits of shape ``(batch, seq_len, num_tags)``."""
        ...


class TorchBackend:
    """A PyTorch token-classification model as a :class:`Backend`: the inputs become its forward's keywords.

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

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(**{name: torch.from_numpy(value).to(self.device) for name, value in inputs.items()})
            return out.logits.float().cpu().numpy()


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
        plan: how the model's head encodes and decodes (:class:`~nerforge.modeling.plan.HeadPlan`); by default
            the plan that ``meta`` describes (a CRF head needs its scores in ``meta``, or pass the plan).
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
        plan: HeadPlan | None = None,
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
        self.plan = plan if plan is not None else HeadPlan.from_meta(meta)
        self.specials: SpecialTokens = special_tokens(tokenizer)
        if meta.max_length <= self.specials.count:
            raise ModelError(f"max_length {meta.max_length} leaves no room for words next to the special tokens")
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad) if pad is not None else 0
        self._pool: Any = None  # threads for concurrent batches, made on first use (see _map)
        self._pool_size = 0
        self.stats = WindowStats()
        # Long inputs are windowed here, so the tokenizer's "longer than the maximum" warning does not apply.
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True

    def predict(
        self,
        examples: Iterable[Sequence[str]],
        *,
        total: int | None = None,
        contexts: Iterable[Any] | None = None,
        done: Callable[[], int] | None = None,
    ) -> Iterator[WordPrediction]:
        """Predict every example, in input order, reading ``chunk_size`` examples at a time.

        Args:
            examples: lists of words (any iterable, consumed lazily).
            total: the number of examples when known, for the progress bar.
            contexts: one :class:`nerforge.modeling.context.SentenceContext` (or ``None``) per example, read along
                with ``examples``; used only by a head with document context.
            done: how many units of ``total`` the examples read so far complete, for a caller whose units are not
                examples (the tagger's texts, each one or more segments); by default each example is one.
        """
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else sys.stderr.isatty()
        bar = tqdm(total=total, unit="text", disable=not show, delay=0 if self.progress else 1.0, leave=False)
        try:
            iterator = iter(examples)
            context_iter = iter(contexts) if contexts is not None else None
            while True:
                chunk = take_chunk(iterator, self.chunk_size, CHUNK_WORDS)
                if not chunk:
                    break
                around = list(itertools.islice(context_iter, len(chunk))) if context_iter is not None else None
                yield from self.predict_chunk(chunk, contexts=around)
                bar.update(len(chunk) if done is None else done() - bar.n)
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
            around = [contexts[i] if i < len(contexts) else None for i in nonempty] if contexts else None
            for i, prediction in zip(nonempty, self._predict_nonempty(batch, around), strict=True):
                results[i] = prediction
        return [r for r in results if r is not None]

    def _predict_nonempty(
        self, examples: Sequence[Sequence[str]], contexts: Sequence[Any] | None
    ) -> list[WordPrediction]:
        encoded = self.plan.encode(self.tokenizer, examples, contexts=contexts, specials=self.specials)
        self.stats.add(encoded.stats)
        if encoded.stats.long_words:
            logger.warning(
                "%d word(s) have more subword pieces than fit in %d; only their first pieces are used",
                encoded.stats.long_words,
                self.meta.max_length,
            )
        logits: list[Any] = [None] * len(encoded.windows)
        num_tags = self.plan.num_outputs
        batches = batches_by_length([len(w.input_ids) for w in encoded.windows], self.batch_size)

        def run(rows: Sequence[int]) -> np.ndarray:
            inputs = self.plan.batch_inputs(encoded, rows, self.pad_id)
            return checked_logits(self.backend.logits(inputs), inputs["input_ids"], num_tags)

        for rows, out in zip(batches, self._map(run, batches), strict=True):
            for row, k in enumerate(rows):
                logits[k] = out[row]
        return self.plan.decode(encoded, logits)

    def _map(self, run: Callable[[Sequence[int]], np.ndarray], batches: list[list[int]]) -> Iterable[np.ndarray]:
        """``run`` over the batches, in order: one after another, or on the backend's ``concurrency`` threads at once
        when it has several (ONNX Runtime's ``run`` is thread-safe and releases the GIL; each call then runs on one
        thread, :class:`~nerforge.prediction.onnx_backend.SessionSettings` ``parallel="batches"``)."""
        workers = min(int(getattr(self.backend, "concurrency", 1) or 1), len(batches))
        if workers <= 1:
            return map(run, batches)
        if self._pool is None or self._pool_size < workers:
            from concurrent.futures import ThreadPoolExecutor

            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nerforge-batch")
            self._pool_size = workers
        return self._pool.map(run, batches)


def take_chunk(examples: Iterator[Sequence[str]], max_examples: int, max_words: int) -> list[list[str]]:
    """The next examples of ``examples``: at most ``max_examples`` of them, and no more once they hold ``max_words``
    words together (one longer example still makes a chunk of its own)."""
    chunk: list[list[str]] = []
    words = 0
    while len(chunk) < max_examples and words < max_words:
        example = next(examples, None)
        if example is None:
            break
        chunk.append(list(example))
        words += len(example)
    return chunk
