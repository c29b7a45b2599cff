"""The serving app: a REST API over one model, and a small web page, in one FastAPI application.

``create_app(predictor)`` takes the model as an argument (anything with ``predict(texts)`` and ``info``, see
:mod:`nerforge.serving.predictor`), so tests pass a small deterministic fake and ``nerforge serve`` a real tagger.
Every route that runs the model goes through one :class:`~nerforge.serving.batching.Batcher`, so concurrent
requests share model calls.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, File, Query, UploadFile
from fastapi.responses import Response

from nerforge import __version__
from nerforge.prediction.urlfetch import FetchPolicy, PageFetcher, UrlFetcher
from nerforge.serving import csvio
from nerforge.serving.guards import GuardMiddleware, install_error_handlers
from nerforge.serving.job_routes import add_job_routes
from nerforge.serving.label_studio import LATE_ANSWER_S
from nerforge.serving.label_studio import PREFIX as LABEL_STUDIO_PREFIX
from nerforge.serving.label_studio import router as label_studio_router
from nerforge.serving.pages import add_page_routes
from nerforge.serving.predictor import Predictor
from nerforge.serving.schemas import (
    BatchingStats,
    BatchResponse,
    CsvJsonResponse,
    CsvRowOut,
    DistinctEntity,
    EntitiesResponse,
    ErrorResponse,
    HealthResponse,
    LayerInfo,
    Limits,
    ModelResponse,
    TextRequest,
    TextsRequest,
    UrlRequest,
    UrlResponse,
    entities_out,
    sanitize_json,
)
from nerforge.serving.service import Service, clean, safe_filename
from nerforge.serving.settings import ServeSettings

_ERRORS = {
    400: {"model": ErrorResponse, "description": "The body could not be parsed (not JSON, broken multipart)."},
    413: {
        "model": ErrorResponse,
        "description": "A limit was exceeded (body size, text length, count of texts or rows).",
    },
    422: {"model": ErrorResponse, "description": "The input is invalid."},
    504: {"model": ErrorResponse, "description": "The request (or the page fetch) took too long."},
}


def create_app(
    predictor: Predictor,
    settings: ServeSettings | None = None,
    *,
    fetcher: PageFetcher | None = None,
    learner: Callable[[Service], Any] | None = None,
) -> FastAPI:
    """The app serving ``predictor``.

    Args:
        predictor: the model (``predict(texts) -> list[list[Entity]]`` and ``info``).
        settings: limits and batching; defaults to :class:`ServeSettings()`.
        fetcher: what fetches pages for ``/v1/entities/url``; defaults to a :class:`UrlFetcher` under the
            settings' fetch limits.
        learner: builds the app's :class:`~nerforge.serving.learning.Learner` from its service (``serve --learn``):
            Label Studio's *Start training* then trains new versions; without one it is answered with 501.
    """
    settings = settings or ServeSettings()
    if fetcher is None:
        policy = FetchPolicy(
            allow_private=settings.allow_private_urls,
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.fetch_max_bytes,
            max_redirects=settings.fetch_max_redirects,
        )
        fetcher = UrlFetcher(policy)
    service = Service(predictor, settings, fetcher)
    if learner is not None:
        service.learner = learner(service)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.batcher.start()
        try:
            yield
        finally:
            await service.jobs.close()
            await service.batcher.stop()

    app = FastAPI(
        title="nerforge",
        version=__version__,
        summary="Named-entity recognition for texts, web pages and CSV files.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger UI and ReDoc load their scripts from a CDN: /docs is ours (pages.py)
        redoc_url=None,
    )
    app.state.service = service
    app.state.batcher = service.batcher
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        timeout_s=settings.request_timeout_s,
        allowed_hosts=settings.allowed_hosts,
        max_per_client=settings.max_concurrent_per_client,
        route_limits={
            LABEL_STUDIO_PREFIX: (
                settings.label_studio_max_body_bytes,
                settings.label_studio_deadline_s + LATE_ANSWER_S,
            )
        },
    )
    _add_api_routes(app, service)
    add_job_routes(app, service)
    app.include_router(label_studio_router(service))
    add_page_routes(app)
    return app


def _add_api_routes(app: FastAPI, service: Service) -> None:
    limits = service.settings

    @app.get("/healthz", response_model=HealthResponse, tags=["service"])
    @app.get("/v1/health", response_model=HealthResponse, tags=["service"])
    async def healthz() -> HealthResponse:
        """Liveness, what the batcher has done so far and, with ``--learn``, the learning job's state."""
        s = service.batcher.stats
        stats = BatchingStats(
            batches=s.batches,
            requests=s.requests,
            texts=s.texts,
            queued=service.batcher.queued,
            largest_batch_requests=s.largest_batch_requests,
            largest_batch_texts=s.largest_batch_texts,
        )
        learning = service.learner.state() if service.learner is not None else None
        return HealthResponse(
            status="ok", model_version=service.model_version, process=os.getpid(), batching=stats, learning=learning
        )

    @app.get("/v1/model", response_model=ModelResponse, tags=["model"])
    async def model_info() -> ModelResponse:
        """The labels the model predicts, its evaluation metrics, versions and this server's limits."""
        info = service.predictor.info
        return ModelResponse(
            name=info.name,
            labels=info.labels,
            tags=list(info.tags),
            metrics=sanitize_json(dict(info.metrics)),
            backend=info.backend,
            base_model=info.base_model,
            model_version=info.model_version,
            trained_with=info.trained_with,
            version=__version__,
            limits=Limits(
                max_body_bytes=limits.max_body_bytes,
                max_text_chars=limits.max_text_chars,
                max_texts=limits.max_texts,
                max_csv_rows=limits.max_csv_rows,
                request_timeout_s=limits.request_timeout_s,
                allow_private_urls=limits.allow_private_urls,
                max_csv_jobs=limits.max_csv_jobs,
            ),
            layers=[LayerInfo(name=name, labels=list(types)) for name, types in info.layers],
        )

    @app.post(
        "/v1/entities",
        response_model=EntitiesResponse | BatchResponse,
        responses=_ERRORS,
        tags=["entities"],
        description=(
            'Send `{"text": "..."}` for `{"entities": [...]}`, or `{"texts": [...]}` for `{"results": '
            f'[{{"entities": [...]}}, ...]}}`. At most {limits.max_texts} texts of {limits.max_text_chars} '
            "characters each."
        ),
    )
    async def entities(body: Annotated[TextRequest | TextsRequest, Body()]) -> EntitiesResponse | BatchResponse:
        if isinstance(body, TextRequest):
            service.check_text(body.text)
            (found,) = await service.predict([body.text])
            return EntitiesResponse(entities=entities_out(found))
        service.check_count(body.texts)
        for i, text in enumerate(body.texts):
            service.check_text(text, f"text {i + 1}")
        found_all = await service.predict(body.texts)
        return BatchResponse(results=[EntitiesResponse(entities=entities_out(f)) for f in found_all])

    @app.post(
        "/v1/entities/csv",
        response_model=None,
        tags=["entities"],
        responses={
            200: {
                "description": "`format=csv`: the file with an `entities` column (JSON list per row); "
                "`format=distinct`: one row per distinct entity (`label, text, count`); `format=json`: both, as JSON.",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/CsvJsonResponse"}},
                },
            },
            **_ERRORS,
        },
        description=(
            f"Upload a UTF-8 CSV file (field `file`) with a `text` column; at most {limits.max_csv_rows} rows, "
            f"answered within {limits.request_timeout_s:g} s (a larger file: `POST /v1/jobs/csv`). Cells that a "
            "spreadsheet would read as formulas are prefixed with `'`; entity offsets count that `'`."
        ),
    )
    async def entities_csv(
        file: Annotated[UploadFile, File(description="A CSV file with a `text` column.")],
        output: Annotated[Literal["csv", "distinct", "json"], Query(alias="format")] = "csv",
    ) -> Response:
        data = await file.read()
        table = csvio.read_csv(data, max_rows=limits.max_csv_rows, source=safe_filename(file.filename, ".csv"))
        for i, text in enumerate(table.texts):
            service.check_text(text, f"row {i + 1}")
        per_row = await service.predict(table.texts)
        if output == "json":
            rows = [
                CsvRowOut(row=i + 1, text=t, entities=entities_out(e))
                for i, (t, e) in enumerate(zip(table.texts, per_row, strict=True))
            ]
            distinct = [
                DistinctEntity(text=d.text, label=d.label, count=d.count) for d in csvio.distinct_entities(per_row)
            ]
            payload = CsvJsonResponse(columns=table.columns, rows=rows, distinct=distinct)
            return Response(payload.model_dump_json(), media_type="application/json")
        if output == "distinct":
            text, suffix = csvio.distinct_csv(per_row), ".distinct-entities.csv"
        else:
            text, suffix = csvio.tagged_csv(table, per_row), ".entities.csv"
        filename = safe_filename(file.filename, suffix)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    @app.post(
        "/v1/entities/url",
        response_model=UrlResponse,
        responses=_ERRORS,
        tags=["entities"],
        description=(
            "Fetch an http(s) page (text/html or text/plain), extract its main text and tag it. Only public "
            "addresses are fetched unless the server allows private ones; redirects are checked hop by hop. "
            f"Text past {limits.max_text_chars} characters is cut (`truncated: true`)."
        ),
    )
    async def entities_url(body: UrlRequest) -> UrlResponse:
        service.check_text(body.url, "url")
        page = await service.fetcher.fetch(body.url)
        text = clean(page.text)
        truncated = len(text) > limits.max_text_chars
        text = text[: limits.max_text_chars]
        (found,) = await service.predict([text])
        return UrlResponse(
            url=clean(page.url),
            title=clean(page.title) if page.title else None,
            content_type=page.content_type,
            text=text,
            truncated=truncated,
            entities=entities_out(found),
        )
