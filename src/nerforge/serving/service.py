"""What the routes of one serving app share: its settings, the model behind a batcher, the page fetcher and the
background CSV jobs; and the checks every route applies to the texts it is given."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from nerforge.prediction.segments import segments, shift
from nerforge.prediction.urlfetch import PageFetcher
from nerforge.serving.batching import Batcher
from nerforge.serving.guards import ApiError
from nerforge.serving.jobs import JobStore
from nerforge.serving.predictor import Predictor
from nerforge.serving.settings import ServeSettings
from nerforge.types import Entity


def clean(text: str) -> str:
    """``text`` with anything that cannot be encoded as UTF-8 replaced (for text that did not come from a client)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def safe_filename(name: str | None, suffix: str) -> str:
    """A download name from an upload's name: letters, digits, ``._-`` only, at most 80 characters of stem."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "results").stem)[:80].strip("._") or "results"
    return f"{stem}{suffix}"


SEGMENTS_PER_PIECE = 5  # a long text's segments are a fifth of a piece: 4,000 characters at the default 20,000


class Service:
    """The settings, the model and its batcher, the page fetcher and the job store of one app."""

    def __init__(self, predictor: Predictor, settings: ServeSettings, fetcher: PageFetcher) -> None:
        self.predictor = predictor
        self.settings = settings
        self.fetcher = fetcher
        # through self.predictor at each batch: a new model version swapped in (swap) serves the next batch
        self.batcher = Batcher(
            lambda texts: self.predictor.predict(texts),
            max_texts=settings.batch_max_texts,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            max_chars=settings.batch_max_chars,
        )
        self.learner: Any = None  # a nerforge.serving.learning.Learner when the server learns from Label Studio
        self.jobs = JobStore(self.predict, chunk_rows=settings.batch_max_texts, max_active=settings.max_csv_jobs)

    def swap(self, predictor: Predictor) -> None:
        """Serve ``predictor`` from the next batch on (the batch in progress finishes with the one before)."""
        self.predictor = predictor

    @property
    def model_version(self) -> str:
        """The served model's version string (one name for it everywhere)."""
        info = self.predictor.info
        return info.model_version or f"nerforge-{info.name}"

    def check_count(self, texts: list[str]) -> None:
        if len(texts) > self.settings.max_texts:
            raise ApiError(
                413, "too_many_texts", f"{len(texts)} texts; the limit is {self.settings.max_texts} per request"
            )

    def check_text(self, text: str, name: str = "text") -> None:
        """Refuse a text over the length limit (413) or one that is not valid Unicode (422)."""
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise ApiError(413, "text_too_long", f"{name} has {len(text)} characters; the limit is {limit}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ApiError(
                422, "invalid_text", f"{name} is not valid Unicode (unpaired surrogate at character {exc.start})"
            ) from None

    async def predict(self, texts: list[str]) -> list[list[Entity]]:
        """Entities for each text. The texts go to the batcher in pieces of at most ``batch_max_texts`` texts and
        about ``batch_max_chars`` characters, long texts cut into segments (:func:`segments`): each piece waits its
        turn behind what others queued meanwhile, so one big request cannot hold the model, and a request whose
        client has gone (timed out) stops after the piece in progress."""
        found = await self.predict_until(texts, deadline=None)
        return [entities if entities is not None else [] for entities in found]

    async def predict_until(self, texts: list[str], deadline: float | None) -> list[list[Entity] | None]:
        """:meth:`predict`, stopping at the first piece that would start after ``deadline`` (``time.monotonic()``):
        the texts not finished by then are ``None``."""
        max_chars = self.settings.batch_max_chars
        parts = [
            (i, offset, piece)
            for i, text in enumerate(texts)
            if text.strip()  # blank texts have no entities
            for offset, piece in segments(text, max(1, max_chars // SEGMENTS_PER_PIECE))
        ]
        results: list[list[Entity] | None] = [[] for _ in texts]
        pieces = chunks(parts, self.settings.batch_max_texts, max_chars)
        for k, chunk in enumerate(pieces):
            if deadline is not None and time.monotonic() >= deadline:
                for rest in pieces[k:]:
                    for i, _, _ in rest:
                        results[i] = None
                break
            found = await self.batcher.submit([piece for _, _, piece in chunk])
            for (i, offset, _), entities in zip(chunk, found, strict=True):
                done = results[i]
                if done is not None:
                    done.extend(shift(e, offset) for e in entities)
        return results


def chunks(parts: list[tuple[int, int, str]], max_texts: int, max_chars: int) -> list[list[tuple[int, int, str]]]:
    """Consecutive runs of ``parts`` with at most ``max_texts`` items and ``max_chars`` characters (one item may
    exceed it alone)."""
    out: list[list[tuple[int, int, str]]] = []
    current: list[tuple[int, int, str]] = []
    size = 0
    for part in parts:
        if current and (len(current) >= max_texts or size + len(part[2]) > max_chars):
            out.append(current)
            current, size = [], 0
        current.append(part)
        size += len(part[2])
    if current:
        out.append(current)
    return out
