"""Request and response bodies of the serving API (pydantic), so the OpenAPI spec describes them exactly.

Requests reject unknown keys (``extra="forbid"``): ``{"text": ...}`` and ``{"texts": [...]}`` are two distinct
shapes, and a body with both, or neither, is a 422.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nerforge.types import Entity


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextRequest(_Request):
    """One text to tag."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Tim Cook visited Paris in May 🎉."}]})

    text: str = Field(description="The text; its length is limited by the server (see GET /v1/model).")


class TextsRequest(_Request):
    """Several texts to tag in one request."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"texts": ["Ana moved to Madrid.", "No names here."]}]})

    texts: list[str] = Field(description="The texts; their number and lengths are limited by the server.")


class UrlRequest(_Request):
    """A web page to fetch, reduce to its main text, and tag."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"url": "https://example.org/news/article.html"}]})

    url: str = Field(max_length=2048, description="An http or https URL of a text/html or text/plain page.")


class EntityOut(BaseModel):
    """One entity: ``text == input[start:end]``, offsets counted in Unicode code points (Python's ``str``
    indices; JavaScript strings count UTF-16 units, so convert with ``Array.from(text)``), half-open."""

    text: str
    label: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    score: float
    # absent (not null) from a model of one layer: its answers are what they were before layers existed
    layer: str | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="The entity's layer, from a model of several layers of entities (whose "
        "entities may overlap); absent from a model of one.",
    )

    @classmethod
    def from_entity(cls, entity: Entity) -> EntityOut:
        score = float(entity.score)
        return cls(
            text=entity.text,
            label=entity.label,
            start=int(entity.start),
            end=int(entity.end),
            score=score if math.isfinite(score) else 0.0,
            layer=entity.layer or None,
        )


def entities_out(entities: list[Entity]) -> list[EntityOut]:
    return [EntityOut.from_entity(e) for e in entities]


class EntitiesResponse(BaseModel):
    """The entities of one text, in order of ``start``."""

    entities: list[EntityOut]


class BatchResponse(BaseModel):
    """The entities of each text, in the order of the request's ``texts``."""

    results: list[EntitiesResponse]


class UrlResponse(BaseModel):
    """The main text of a page and its entities (offsets point into ``text``)."""

    url: str = Field(description="The URL the text came from, after redirects.")
    title: str | None
    content_type: str
    text: str
    truncated: bool = Field(description="True when the page text was cut to the server's text length limit.")
    entities: list[EntityOut]


class DistinctEntity(BaseModel):
    """One distinct (text, label) pair and how often it was found."""

    text: str
    label: str
    count: int


class CsvRowOut(BaseModel):
    row: int = Field(description="1-based data row number (the header is row 0).")
    text: str
    entities: list[EntityOut]


class CsvJsonResponse(BaseModel):
    """The JSON view of a tagged CSV upload (``format=json``)."""

    columns: list[str]
    rows: list[CsvRowOut]
    distinct: list[DistinctEntity]


class JobResponse(BaseModel):
    """A background CSV job: where it stands. Poll ``GET /v1/jobs/{id}`` until ``status`` is ``done``."""

    id: str
    filename: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    rows_total: int
    rows_done: int
    queue_position: int = Field(description="Jobs ahead of this one (0: running or next).")
    elapsed_s: float = Field(description="Seconds since the job started running.")
    eta_s: float | None = Field(description="Estimated seconds left at the pace so far (null when unknown).")
    error: str | None = None
    columns: list[str]


class JobRowsResponse(BaseModel):
    """Tagged rows of a job, from ``start``; ``rows_done`` says how many are ready so far."""

    status: Literal["queued", "running", "done", "failed", "cancelled"]
    rows_total: int
    rows_done: int
    rows: list[CsvRowOut]


class Limits(BaseModel):
    max_body_bytes: int
    max_text_chars: int
    max_texts: int
    max_csv_rows: int
    request_timeout_s: float
    allow_private_urls: bool
    max_csv_jobs: int


class LayerInfo(BaseModel):
    name: str
    labels: list[str]


class ModelResponse(BaseModel):
    """What the served model predicts and how well it did when it was evaluated."""

    name: str
    labels: list[str]
    tags: list[str]
    metrics: dict[str, Any]
    backend: str
    base_model: str
    model_version: str = Field(
        description="The model's version: the same string its predictions carry in "
        "prediction files, on /healthz, in Label Studio and on its model card."
    )
    trained_with: str = Field("", description="The nerforge version that trained the model, when known.")
    version: str = Field(description="The nerforge version serving it.")
    limits: Limits
    layers: list[LayerInfo] = Field(
        default_factory=list,
        description="A model of several layers of entities (whose "
        "entities may overlap): each layer and its types, in order; empty otherwise.",
    )


class BatchingStats(BaseModel):
    batches: int
    requests: int
    texts: int
    largest_batch_requests: int
    largest_batch_texts: int
    queued: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    model_version: str = Field(description="The served model's version (as on /v1/model).")
    process: int = Field(description="The id of the server process that answered (one of several with --workers).")
    batching: BatchingStats
    learning: dict[str, Any] | None = Field(
        None,
        description="With serve --learn: the learning job's state (status, "
        "step, last held-out scores, the served version); absent otherwise.",
    )


class ErrorDetail(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error answer: a stable code, a sentence for people, and (for 422s on the body) where it was wrong."""

    error: str
    message: str
    details: list[ErrorDetail] | None = None


def sanitize_json(value: Any) -> Any:
    """Turn non-finite floats (not valid JSON) into ``None``, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): sanitize_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize_json(v) for v in value]
    return value
