"""The ``/v1/jobs`` routes: large CSV uploads tagged in the background (see :mod:`nerforge.serving.jobs`).

``POST /v1/jobs`` answers 202 with the job at once; ``GET /v1/jobs/{id}`` says how far it is (rows done,
elapsed, estimated time left); ``GET /v1/jobs/{id}/rows`` returns the rows tagged so far; ``GET
/v1/jobs/{id}/download`` builds the finished file from the stored result (the model is not run again);
``DELETE /v1/jobs/{id}`` cancels it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import FastAPI, File, Path, Query, UploadFile
from fastapi.responses import Response

from nerforge.serving import csvio
from nerforge.serving.guards import ApiError
from nerforge.serving.jobs import CsvJob, JobQueueFullError, rows_slice
from nerforge.serving.schemas import (
    CsvJsonResponse,
    CsvRowOut,
    DistinctEntity,
    ErrorResponse,
    JobResponse,
    JobRowsResponse,
    entities_out,
)
from nerforge.serving.service import Service, safe_filename

MAX_ROWS_PER_READ = 1000
_JOB_ERRORS = {404: {"model": ErrorResponse, "description": "No such job (or it finished long ago and was forgotten)."}}
JobId = Annotated[str, Path(max_length=64, description="The id returned when the job was submitted.")]


def job_response(job: CsvJob, position: int) -> JobResponse:
    return JobResponse(
        id=job.id,
        filename=job.filename,
        status=job.status,
        rows_total=job.rows_total,
        rows_done=job.rows_done,
        queue_position=position,
        elapsed_s=round(job.elapsed_s(), 3),
        eta_s=None if (eta := job.eta_s()) is None else round(eta, 1),
        error=job.error,
        columns=job.table.columns,
    )


def add_job_routes(app: FastAPI, service: Service) -> None:
    limits = service.settings

    def find(job_id: str) -> CsvJob:
        job = service.jobs.get(job_id)
        if job is None:
            raise ApiError(
                404,
                "no_such_job",
                "no such job: it never existed, or it ended and was forgotten, or the server restarted",
            )
        return job

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobResponse,
        tags=["jobs"],
        responses={
            400: {"model": ErrorResponse, "description": "The upload could not be parsed."},
            413: {"model": ErrorResponse, "description": "A limit was exceeded (body size, rows, text length)."},
            422: {"model": ErrorResponse, "description": "The file is not a usable CSV."},
            503: {"model": ErrorResponse, "description": "The job queue is full; retry later (Retry-After)."},
        },
        description=(
            f"Upload a UTF-8 CSV file (field `file`) with a `text` column, at most {limits.max_csv_rows} rows, to be "
            "tagged in the background: the answer (202) comes at once with the job's id; poll `GET /v1/jobs/{id}`. "
            f"At most {limits.max_csv_jobs} jobs are queued or running at a time."
        ),
    )
    async def submit_csv(
        file: Annotated[UploadFile, File(description="A CSV file with a `text` column.")],
    ) -> JobResponse:
        name = safe_filename(file.filename, ".csv")
        table = csvio.read_csv(await file.read(), max_rows=limits.max_csv_rows, source=name)
        for i, text in enumerate(table.texts):
            service.check_text(text, f"row {i + 1}")
        try:
            job = service.jobs.submit(table, name)
        except JobQueueFullError as exc:
            raise ApiError(503, "job_queue_full", str(exc), headers={"retry-after": "10"}) from None
        return job_response(job, service.jobs.position(job))

    @app.get("/v1/jobs/{job_id}", response_model=JobResponse, responses=_JOB_ERRORS, tags=["jobs"])
    async def job_status(job_id: JobId) -> JobResponse:
        """Where a job stands: status, rows done of rows total, elapsed and estimated remaining seconds."""
        job = find(job_id)
        return job_response(job, service.jobs.position(job))

    @app.get("/v1/jobs/{job_id}/rows", response_model=JobRowsResponse, responses=_JOB_ERRORS, tags=["jobs"])
    async def job_rows(
        job_id: JobId,
        start: Annotated[int, Query(ge=0, description="First row to return (0-based).")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS_PER_READ, description="Most rows to return.")] = 500,
    ) -> JobRowsResponse:
        """The rows tagged so far, from `start` (partial results while the job runs)."""
        job = find(job_id)
        rows = [
            CsvRowOut(row=n, text=text, entities=entities_out(found))
            for n, text, found in rows_slice(job, start, limit)
        ]
        return JobRowsResponse(status=job.status, rows_total=job.rows_total, rows_done=job.rows_done, rows=rows)

    @app.get(
        "/v1/jobs/{job_id}/download",
        response_model=None,
        tags=["jobs"],
        responses={
            200: {
                "description": "`format=csv`: the upload with an `entities` column; `format=distinct`: one row per "
                "distinct entity; `format=json`: both, as JSON.",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/CsvJsonResponse"}},
                },
            },
            409: {"model": ErrorResponse, "description": "The job has not finished."},
            **_JOB_ERRORS,
        },
    )
    async def job_download(
        job_id: JobId, output: Annotated[Literal["csv", "distinct", "json"], Query(alias="format")] = "csv"
    ) -> Response:
        """The finished result, built from what the job stored (the model is not run again)."""
        job = find(job_id)
        if job.status != "done":
            raise ApiError(
                409,
                "job_not_done",
                f"the job is {job.status} ({job.rows_done} of {job.rows_total} rows "
                "done); download when its status is done",
            )
        if output == "json":
            rows = [CsvRowOut(row=n, text=t, entities=entities_out(e)) for n, t, e in rows_slice(job, 0, job.rows_done)]
            distinct = [
                DistinctEntity(text=d.text, label=d.label, count=d.count) for d in csvio.distinct_entities(job.results)
            ]
            body = CsvJsonResponse(columns=job.table.columns, rows=rows, distinct=distinct).model_dump_json()
            return Response(body, media_type="application/json")
        if output == "distinct":
            text, suffix = csvio.distinct_csv(job.results), ".distinct-entities.csv"
        else:
            text, suffix = csvio.tagged_csv(job.table, job.results), ".entities.csv"
        filename = safe_filename(job.filename, suffix)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    @app.delete("/v1/jobs/{job_id}", response_model=JobResponse, responses=_JOB_ERRORS, tags=["jobs"])
    async def job_cancel(job_id: JobId) -> JobResponse:
        """Cancel a queued or running job (rows already tagged stay readable); a finished job is left as it is."""
        job = find(job_id)
        await service.jobs.cancel(job)
        return job_response(job, service.jobs.position(job))
