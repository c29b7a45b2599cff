"""Micro-batching: concurrent requests share one call of the model.

Requests put their texts on an asyncio queue. One worker takes the first waiting request, waits a few
milliseconds for others, takes as many as fit in ``max_texts`` texts and ``max_chars`` characters, **shortest
first**, and runs the predictor once for all of them in a single dedicated thread (so the model is never called from
two threads at once and the event loop stays free). Shortest first means a long request does not hold up the short
ones that came with it: it waits for the next batch instead, and after :data:`MAX_SKIPS` batches that passed it over
it goes first, so it is never starved.
A request whose caller has gone (timed out) is skipped. If a batch fails, each request in it is retried alone,
so one bad input fails only its own request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nerforge.types import Entity

logger = logging.getLogger(__name__)

PredictFn = Callable[[list[str]], list[list[Entity]]]
MAX_SKIPS = 2  # batches a waiting request may be passed over by shorter ones before it goes first


class PredictionError(RuntimeError):
    """The predictor failed, or returned a result of the wrong length, for a request."""


@dataclass
class BatchStats:
    """Counters of what the worker has run (for ``/healthz``, tests and benchmarks)."""

    batches: int = 0
    requests: int = 0
    texts: int = 0
    largest_batch_requests: int = 0
    largest_batch_texts: int = 0
    requests_per_batch: Counter = field(default_factory=Counter)

    def record(self, n_requests: int, n_texts: int) -> None:
        self.batches += 1
        self.requests += n_requests
        self.texts += n_texts
        self.largest_batch_requests = max(self.largest_batch_requests, n_requests)
        self.largest_batch_texts = max(self.largest_batch_texts, n_texts)
        self.requests_per_batch[n_requests] += 1


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future
    skipped: int = 0  # batches that went before it although it was waiting

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts)


class Batcher:
    """Gathers concurrent ``submit`` calls into batches for one predictor.

    Args:
        predict: the model's ``predict(texts) -> list[list[Entity]]``.
        max_texts: most texts per batch (a single larger request still runs, alone).
        max_chars: most characters per batch (likewise); ``None``: no bound.
        max_wait_s: how long to wait for more requests once the first of a batch is there.
    """

    def __init__(self, predict: PredictFn, *, max_texts: int = 32, max_wait_s: float = 0.001,
                 max_chars: int | None = None) -> None:  # fmt: skip
        self._predict = predict
        self._max_texts = max_texts
        self._max_chars = max_chars
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._waiting: list[_Job] = []  # taken from the queue, not yet in a batch
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.stats = BatchStats()

    @property
    def queued(self) -> int:
        return (self._queue.qsize() if self._queue else 0) + len(self._waiting)

    async def start(self) -> None:
        if self._worker is not None:
            return
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nerforge-predict")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="nerforge-batcher")

    async def stop(self) -> None:
        if self._worker is None:
            return
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        self._worker = None
        pending = list(self._waiting)
        self._waiting.clear()
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(PredictionError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(self, texts: list[str]) -> list[list[Entity]]:
        """The entities of each text, computed in a batch with whatever else is waiting."""
        if not texts:
            return []
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(list(texts), future))
        return await future

    async def _next_batch(self) -> list[_Job]:
        assert self._queue is not None
        if not self._waiting:
            self._waiting.append(await self._queue.get())
        if self._max_wait_s > 0 and sum(len(j.texts) for j in self._waiting) < self._max_texts:
            await asyncio.sleep(self._max_wait_s)
        while not self._queue.empty():
            self._waiting.append(self._queue.get_nowait())
        waiting = [job for job in self._waiting if not job.future.done()]  # others' callers timed out or went away
        # those passed over too often first (in arrival order), then the shortest
        order = sorted(waiting, key=lambda j: (j.skipped < MAX_SKIPS, 0 if j.skipped >= MAX_SKIPS else j.chars))
        batch: list[_Job] = []
        n_texts = n_chars = 0
        for job in order:
            fits = n_texts + len(job.texts) <= self._max_texts and (
                self._max_chars is None or n_chars + job.chars <= self._max_chars
            )
            if batch and not fits:
                continue
            batch.append(job)
            n_texts += len(job.texts)
            n_chars += job.chars
        if not batch:
            self._waiting = []
            return batch
        taken = [k for k, job in enumerate(waiting) if any(job is b for b in batch)]
        self._waiting = [job for k, job in enumerate(waiting) if k not in taken]
        for k, job in enumerate(waiting):
            if k not in taken and k < max(taken):
                job.skipped += 1  # a request that came after it went first
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(PredictionError("the server is shutting down"))
                raise
            except Exception as exc:  # never let the worker die: fail the batch's requests instead
                logger.exception("batch of %d requests failed", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(PredictionError(str(exc)))

    async def _call(self, texts: list[str]) -> list[list[Entity]]:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self._predict, texts)
        if not isinstance(result, list) or len(result) != len(texts):
            got = len(result) if isinstance(result, list) else type(result).__name__
            raise PredictionError(f"the predictor returned {got} results for {len(texts)} texts")
        return result

    async def _run_batch(self, batch: list[_Job]) -> None:
        texts = [t for job in batch for t in job.texts]
        self.stats.record(len(batch), len(texts))
        try:
            results = await self._call(texts)
        except Exception as exc:
            if len(batch) == 1:
                raise
            logger.warning("batch of %d requests failed (%s); retrying each alone", len(batch), exc)
            for job in batch:
                await self._run_alone(job)
            return
        offset = 0
        for job in batch:
            part = results[offset : offset + len(job.texts)]
            offset += len(job.texts)
            if not job.future.done():
                job.future.set_result(part)

    async def _run_alone(self, job: _Job) -> None:
        if job.future.done():
            return
        try:
            result = await self._call(job.texts)
        except Exception as exc:
            logger.exception("request of %d texts failed", len(job.texts))
            if not job.future.done():
                job.future.set_exception(PredictionError(str(exc)))
            return
        if not job.future.done():
            job.future.set_result(result)
