"""Background jobs for large CSV uploads: submit, watch progress, read partial results, download, cancel.

A CSV of thousands of rows takes longer than one request may (``request_timeout_s``), so the page and API clients
post it as a job instead: ``submit`` parses nothing itself (the caller hands it a checked :class:`CsvTable`), puts
the job in a bounded queue and returns at once; one worker runs the jobs in turn, a chunk of rows at a time through
the same predict function as every other route (so requests in between still get their share of the model).
Rows done, elapsed time and an estimate of the time left are readable at any moment, the rows already tagged too;
the finished result is kept, so downloads are built from it instead of running the model again.

Jobs live in memory while the server runs (a page reload finds its job again by id; a restart forgets them). Ids
are random and unguessable: knowing one is what lets a client read or cancel a job. Finished jobs are forgotten
after ``keep_s`` seconds, or sooner when more than ``max_kept`` have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from nerforge.serving.csvio import CsvTable
from nerforge.types import Entity

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
PredictChunk = Callable[[list[str]], Awaitable[list[list[Entity]]]]
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")


class JobQueueFullError(Exception):
    """``max_active`` jobs are already queued or running."""


@dataclass
class CsvJob:
    """One CSV upload being tagged. ``results[i]`` is set for every ``i < rows_done``."""

    id: str
    filename: str
    table: CsvTable
    created: float
    status: JobStatus = "queued"
    rows_done: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    results: list[list[Entity]] = field(default_factory=list)
    task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def rows_total(self) -> int:
        return len(self.table.rows)

    def elapsed_s(self, now: float | None = None) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or (now if now is not None else time.monotonic())) - self.started

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left at the pace so far; ``None`` before the first chunk is done or after the job ended."""
        if self.status != "running" or not self.rows_done:
            return None
        rate = self.rows_done / max(self.elapsed_s(now), 1e-6)
        return (self.rows_total - self.rows_done) / rate


class JobStore:
    """The jobs of one server and the worker that runs them.

    Args:
        predict: async ``texts -> entities per text`` (the server's batched model call).
        chunk_rows: rows handed to ``predict`` at a time (progress is updated after each).
        max_active: most jobs queued or running at once; one more is refused with :class:`JobQueueFullError`.
        max_kept: most finished jobs remembered.
        keep_s: how long a finished job is remembered.
    """

    def __init__(
        self,
        predict: PredictChunk,
        *,
        chunk_rows: int = 32,
        max_active: int = 4,
        max_kept: int = 32,
        keep_s: float = 3600.0,
    ) -> None:
        self._predict = predict
        self.chunk_rows = max(1, chunk_rows)
        self.max_active = max_active
        self.max_kept = max_kept
        self.keep_s = keep_s
        self._jobs: dict[str, CsvJob] = {}
        self._turn = asyncio.Lock()  # one job runs at a time, in the order submitted

    def active(self) -> int:
        return sum(job.status in ACTIVE for job in self._jobs.values())

    def submit(self, table: CsvTable, filename: str) -> CsvJob:
        """Queue ``table`` and start working on it as soon as the jobs before it are done."""
        self._forget_old()
        if self.active() >= self.max_active:
            raise JobQueueFullError(
                f"{self.max_active} CSV jobs are already queued or running, the most this server "
                "takes at once; try again when one has finished"
            )
        job = CsvJob(id=secrets.token_urlsafe(16), filename=filename, table=table, created=time.monotonic())
        self._jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job), name=f"csv-job-{job.id[:6]}")
        return job

    def get(self, job_id: str) -> CsvJob | None:
        self._forget_old()
        return self._jobs.get(job_id)

    def position(self, job: CsvJob) -> int:
        """How many queued or running jobs were submitted before ``job`` (0: it is next or running)."""
        return sum(other.status in ACTIVE and other.created < job.created for other in self._jobs.values())

    async def cancel(self, job: CsvJob) -> None:
        """Stop ``job`` if it is queued or running; rows already tagged stay readable."""
        if job.status in ACTIVE and job.task is not None:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task

    async def close(self) -> None:
        """Cancel every unfinished job (the server is stopping)."""
        for job in list(self._jobs.values()):
            await self.cancel(job)

    async def _run(self, job: CsvJob) -> None:
        try:
            async with self._turn:
                job.status, job.started = "running", time.monotonic()
                texts = job.table.texts
                for start in range(0, len(texts), self.chunk_rows):
                    chunk = texts[start : start + self.chunk_rows]
                    found = await self._predict(chunk)
                    job.results.extend(found)
                    job.rows_done = len(job.results)
                job.status = "done"
        except asyncio.CancelledError:
            job.status = "cancelled"
            raise
        except Exception as exc:  # noqa: BLE001 - any failure ends this job only, and is reported on it
            logger.exception("CSV job %s failed", job.id[:6])
            job.status, job.error = "failed", str(exc) or type(exc).__name__
        finally:
            job.finished = time.monotonic()
            if job.started is None:
                job.started = job.finished

    def _forget_old(self) -> None:
        now = time.monotonic()
        ended = sorted(
            (job for job in self._jobs.values() if job.status not in ACTIVE), key=lambda job: job.finished or 0.0
        )
        excess = max(0, len(ended) - self.max_kept)
        for i, job in enumerate(ended):
            if i < excess or now - (job.finished or now) > self.keep_s:
                del self._jobs[job.id]


def rows_slice(job: CsvJob, start: int, limit: int) -> Sequence[tuple[int, str, list[Entity]]]:
    """``(row number from 1, text, entities)`` of the tagged rows ``start .. start + limit`` (fewer at the end)."""
    texts = job.table.texts
    end = min(job.rows_done, start + limit)
    return [(i + 1, texts[i], job.results[i]) for i in range(start, end)]
