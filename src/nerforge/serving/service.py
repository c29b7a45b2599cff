"""What the routes of one serving app share: its settings, the model behind a batcher, the page fetcher and the
background CSV jobs; and the checks every route applies to the texts it is given."""

from __future__ import annotations

import re
from pathlib import Path

from nerforge.serving.batching import Batcher
from nerforge.serving.guards import ApiError
from nerforge.serving.jobs import JobStore
from nerforge.serving.predictor import Predictor
from nerforge.serving.settings import ServeSettings
from nerforge.serving.urlfetch import PageFetcher
from nerforge.types import Entity


def clean(text: str) -> str:
    """``text`` with anything that cannot be encoded as UTF-8 replaced (for text that did not come from a client)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def safe_filename(name: str | None, suffix: str) -> str:
    """A download name from an upload's name: letters, digits, ``._-`` only, at most 80 characters of stem."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "results").stem)[:80].strip("._") or "results"
    return f"{stem}{suffix}"


class Service:
    """The settings, the model and its batcher, the page fetcher and the job store of one app."""

    def __init__(self, predictor: Predictor, settings: ServeSettings, fetcher: PageFetcher) -> None:
        self.predictor = predictor
        self.settings = settings
        self.fetcher = fetcher
        self.batcher = Batcher(
            predictor.predict, max_texts=settings.batch_max_texts, max_wait_s=settings.batch_max_wait_ms / 1000
        )
        self.jobs = JobStore(self.predict, chunk_rows=settings.batch_max_texts, max_active=settings.max_csv_jobs)

    def check_count(self, texts: list[str]) -> None:
        if len(texts) > self.settings.max_texts:
            raise ApiError(413, "too_many_texts",
                           f"{len(texts)} texts; the limit is {self.settings.max_texts} per request")

    def check_text(self, text: str, name: str = "text") -> None:
        """Refuse a text over the length limit (413) or one that is not valid Unicode (422)."""
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise ApiError(413, "text_too_long", f"{name} has {len(text)} characters; the limit is {limit}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ApiError(422, "invalid_text",
                           f"{name} is not valid Unicode (unpaired surrogate at character {exc.start})") from None

    async def predict(self, texts: list[str]) -> list[list[Entity]]:
        """Entities for each text, in chunks of the batch size so one big upload does not starve other requests."""
        results: list[list[Entity]] = [[] for _ in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]  # blank texts have no entities
        step = self.settings.batch_max_texts
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            for i, entities in zip(chunk, await self.batcher.submit([texts[i] for i in chunk]), strict=True):
                results[i] = list(entities)
        return results
