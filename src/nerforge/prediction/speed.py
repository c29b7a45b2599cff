"""How fast a model tags: words per second, words per CPU-second and latency, on the user's own sentences.

:func:`time_batches` times any tagging function (a nerforge :class:`~nerforge.prediction.tagger.Tagger`, or another
engine in ``bench/speed_engines.py``) the same way: each batch size above 1 tags all the sentences in one call at that
batch size; batch 1 tags ``latency_sentences`` sentences spread over the set one at a time, giving p50/p95 latency.
Wall time and this process's CPU time (every thread of it) are both kept: CPU time is what a machine shared with other
work, or a fleet of single-threaded workers, pays.

:func:`measure_speed` is ``nerforge bench``: it loads a model directory, reads annotated data the way the model's
training data was read, warms the model up, settles the loaded objects (:mod:`nerforge.prediction.heap`, as
``predict`` and ``serve`` do), times it, and scores the largest batch size's tags against the gold ones (strict IOB2)
so a fast result that is wrong shows. Each sentence is tagged on its own: a model that reads neighbouring sentences
as context (``Tagger.context_width``) gets none here, so its F1 can differ from ``nerforge evaluate``'s.

EXAMPLE:
    >>> report = measure_speed("runs/conll/onnx-int8", "test.conll", batch_sizes=(1, 32))   # doctest: +SKIP
    >>> report.timings[0].words_per_s                                                     # doctest: +SKIP
    17963.0
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nerforge.errors import DataFormatError, UsageError

TagFunction = Callable[[Sequence[Sequence[str]], int], list[list[str]]]  # (sentences, batch size) -> tags


@dataclass(frozen=True)
class BatchTiming:
    """One batch size's measurement. ``p50_ms``/``p95_ms`` only for batch size 1 (one sentence per call)."""

    batch_size: int
    sentences: int
    words: int
    seconds: float
    cpu_seconds: float
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def words_per_s(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0

    @property
    def sentences_per_s(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else 0.0

    @property
    def words_per_cpu_s(self) -> float:
        return self.words / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "words_per_s": round(self.words_per_s, 1),
            "sentences_per_s": round(self.sentences_per_s, 2),
            "words_per_cpu_s": round(self.words_per_cpu_s, 1),
        }


def _spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items taken evenly over ``items`` (all of them when there are fewer)."""
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def time_batches(
    tag: TagFunction, sentences: Sequence[Sequence[str]], batch_sizes: Sequence[int], latency_sentences: int = 200
) -> tuple[list[BatchTiming], list[list[str]] | None]:
    """Time ``tag`` at each batch size (largest first); returns the timings and the largest batch's tags (``None``
    when only batch 1 was timed).

    Raises:
        UsageError: no sentences, a batch size below 1, or ``latency_sentences`` below 1.
    """
    if not sentences:
        raise UsageError("no sentences to time")
    if not batch_sizes or min(batch_sizes) < 1:
        raise UsageError(f"batch sizes must be at least 1, got {list(batch_sizes)}")
    if latency_sentences < 1:
        raise UsageError(f"latency sentences must be at least 1, got {latency_sentences}")
    timings: list[BatchTiming] = []
    tags: list[list[str]] | None = None
    for size in sorted(set(batch_sizes), reverse=True):
        chosen = list(sentences) if size > 1 else _spread(sentences, latency_sentences)
        words = sum(len(s) for s in chosen)
        latencies: list[float] = []
        wall, cpu = time.perf_counter(), time.process_time()
        if size > 1:
            out = tag(chosen, size)
            tags = tags if tags is not None else out
        else:
            for sentence in chosen:
                started = time.perf_counter()
                tag([sentence], 1)
                latencies.append(time.perf_counter() - started)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        p50 = p95 = None
        if latencies:
            p50 = 1000 * statistics.median(latencies)
            p95 = 1000 * (
                statistics.quantiles(latencies, n=20, method="inclusive")[18] if len(latencies) > 1 else latencies[0]
            )
        timings.append(BatchTiming(size, len(chosen), words, wall, cpu, p50, p95))
    return timings, tags


def entity_f1(gold: Sequence[Sequence[Any]], predicted: Sequence[Sequence[Any]]) -> float:
    """Strict micro F1 of predicted entity spans against gold ones, sentence by sentence."""
    from nerforge.evaluation.metrics import pooled, score_spans

    return pooled(score_spans(gold, predicted)).f1


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (Linux ``VmHWM``), or ``None`` where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class SpeedReport:
    """What :func:`measure_speed` measured."""

    model: str
    data: str
    backend: str
    threads: int
    load_seconds: float
    timings: list[BatchTiming] = field(default_factory=list)
    f1: float | None = None  # strict IOB2 micro F1 of the largest batch size's tags; None without gold entities
    peak_rss_mb: float | None = None
    parallel: str | None = None  # ONNX Runtime: "batches" (batches at once, one thread each) or "intra"; None: torch
    unfused: list[str] | None = None  # ONNX Runtime: the graph rewrites its session left out; None: torch

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "timings"},
            "timings": [t.to_dict() for t in self.timings],
        }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _is_onnx(tagger: Any) -> bool:
    from nerforge.prediction.onnx_backend import OnnxBackend

    return isinstance(tagger.engine.backend, OnnxBackend)


def _backend_name(tagger: Any) -> str:
    onnx = tagger.meta.extra.get("onnx") if isinstance(tagger.meta.extra, dict) else None
    if _is_onnx(tagger):
        quantized = isinstance(onnx, dict) and onnx.get("quantization")
        return "onnx int8" if quantized else "onnx"
    return "torch"


def measure_speed(
    model: str | Path,
    data: str | Path,
    *,
    batch_sizes: Sequence[int] = (1, 32),
    max_sentences: int | None = None,
    latency_sentences: int = 200,
    threads: int | None = None,
    backend: str | None = None,
    options: Any = None,
    spinning: bool = True,
    parallel: str = "batches",
    unfused: Sequence[str] | None = None,
) -> SpeedReport:
    """Load ``model``, read ``data`` (annotated, read with ``options`` or as the model's training data was), and time
    tagging its sentences (the first ``max_sentences``) at ``batch_sizes``.

    ``threads`` is the ONNX Runtime session's thread count (default: one per physical core), ``spinning`` whether its
    idle threads spin (``SessionSettings.spinning``) and ``parallel`` how they share the work
    (``SessionSettings.parallel``: batches at once, one thread each, or each batch split over all), ``unfused`` the
    graph rewrites left out (``SessionSettings.unfused``; ``None``: the measured default); a PyTorch model runs on
    the threads torch has, which is process-wide and the caller's to set (``nerforge bench --threads`` sets both).

    Raises:
        ModelError: ``model`` is not a model directory.
        DataFormatError: ``data`` cannot be read or holds no sentence.
        UsageError: a bad batch size, sentence count or thread count.
    """
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.saved import from_saved
    from nerforge.prediction.heap import settle_loaded_objects
    from nerforge.prediction.onnx_backend import SessionSettings
    from nerforge.prediction.tagger import Tagger
    from nerforge.threads import physical_cores

    if max_sentences is not None and max_sentences < 1:
        raise UsageError(f"--sentences must be at least 1, got {max_sentences}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise UsageError(f"batch sizes must be at least 1, got {list(batch_sizes)}")
    n_threads = threads if threads is not None else physical_cores()
    if n_threads < 1:
        raise UsageError(f"--threads must be at least 1, got {n_threads}")
    started = time.perf_counter()
    settings = SessionSettings(
        threads=n_threads, spinning=spinning, parallel=parallel, unfused=None if unfused is None else tuple(unfused)
    )
    tagger = Tagger.load(model, backend=backend, progress=False, onnx_settings=settings)
    load_seconds = time.perf_counter() - started
    examples = read_examples(Path(data), options if options is not None else from_saved(tagger.meta.reading))
    examples = [ex for ex in (examples[:max_sentences] if max_sentences else examples) if ex.tokens]
    sentences = [list(ex.tokens) for ex in examples]
    if not sentences:
        raise DataFormatError(Path(data), None, "no sentences to time")

    whole: list[Any] = []  # the predictions of a run over every sentence: what the F1 scores

    def tag(batch: Sequence[Sequence[str]], batch_size: int) -> list[list[str]]:
        tagger.engine.batch_size = batch_size
        predictions = tagger.predict_words([list(s) for s in batch])
        if len(batch) == len(sentences) and not whole:
            whole.extend(predictions)
        return [list(p.tags) for p in predictions]

    tag(sentences[:8], max(batch_sizes))  # warm-up: first-call allocations and graph planning, untimed
    settle_loaded_objects()
    timings, _ = time_batches(tag, sentences, batch_sizes, latency_sentences)
    # the model's entities against the gold ones it is scored on (nested ones, every layer's: not only the tags)
    gold = [tagger.plan.gold_spans(ex) for ex in examples]
    has_entities = any(gold)
    if not whole and has_entities:
        tag(sentences, 1)
    f1 = entity_f1(gold, [p.entity_spans() for p in whole]) if has_entities and whole else None
    return SpeedReport(
        model=str(model),
        data=str(data),
        backend=_backend_name(tagger),
        threads=n_threads if _is_onnx(tagger) else _torch_threads(),
        load_seconds=load_seconds,
        timings=timings,
        f1=f1,
        peak_rss_mb=peak_rss_mb(),
        parallel=parallel if _is_onnx(tagger) else None,
        unfused=list(settings.disabled_optimizers) if _is_onnx(tagger) else None,
    )
