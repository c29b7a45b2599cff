"""Background CSV jobs over a real server: progress, partial rows, the stored download, cancel, the queue limit."""

from __future__ import annotations

import csv
import io
import json
import time

import httpx
import pytest
from serving_helpers import GazetteerPredictor, running_server, wait_until

from nerforge.serving import ServeSettings, create_app

ROWS = ["Bob visited Berlin.", "=Alice Smith in Paris", "nothing here", "Acme Corp hired Bob."]


def csv_bytes(n: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text"])
    for i in range(n):
        writer.writerow([i, ROWS[i % len(ROWS)]])
    return out.getvalue().encode()


def submit(url: str, data: bytes, name: str = "big.csv") -> httpx.Response:
    return httpx.post(url + "/v1/jobs", files={"file": (name, data, "text/csv")}, timeout=30)


@pytest.fixture
def slow_server():
    """A model that takes 50 ms a call, 4 rows a call: 200 rows take ~2.5 s."""
    predictor = GazetteerPredictor(delay_s=0.05)
    settings = ServeSettings(batch_max_texts=4, batch_max_wait_ms=0, max_csv_jobs=2)
    with running_server(create_app(predictor, settings)) as url:
        yield url, predictor


def test_api_job_progress_partial_rows_and_stored_download(slow_server) -> None:
    url, predictor = slow_server
    answer = submit(url, csv_bytes(200))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["rows_total"] == 200 and job["status"] in ("queued", "running") and len(job["id"]) >= 20
    # Progress is visible while it runs: some rows done, not all, an estimate of the time left, partial rows.
    assert wait_until(lambda: 0 < httpx.get(f"{url}/v1/jobs/{job['id']}").json()["rows_done"] < 200, 10)
    status = httpx.get(f"{url}/v1/jobs/{job['id']}").json()
    assert status["status"] == "running" and status["eta_s"] is not None and status["eta_s"] > 0
    partial = httpx.get(f"{url}/v1/jobs/{job['id']}/rows", params={"start": 0, "limit": 1000}).json()
    assert 0 < len(partial["rows"]) < 200 and partial["rows"][0]["row"] == 1
    assert [e["text"] for e in partial["rows"][0]["entities"]] == ["Bob", "Berlin"]
    early = httpx.get(f"{url}/v1/jobs/{job['id']}/download")
    assert early.status_code == 409 and early.json()["error"] == "job_not_done"
    assert wait_until(lambda: httpx.get(f"{url}/v1/jobs/{job['id']}").json()["status"] == "done", 30)
    calls = len(predictor.calls)
    download = httpx.get(f"{url}/v1/jobs/{job['id']}/download", params={"format": "csv"})
    assert download.status_code == 200
    assert 'filename="big.entities.csv"' in download.headers["content-disposition"]
    assert len(predictor.calls) == calls  # built from the stored result: the model did not run again
    rows = list(csv.reader(io.StringIO(download.text, newline="")))
    assert rows[0] == ["id", "text", "entities"] and len(rows) == 201
    escaped = rows[2]
    assert escaped[1] == "'=Alice Smith in Paris"
    for entity in json.loads(escaped[2]):  # offsets slice the written (escaped) cell
        assert escaped[1][entity["start"] : entity["end"]] == entity["text"]
    distinct = httpx.get(f"{url}/v1/jobs/{job['id']}/download", params={"format": "distinct"}).text
    assert distinct.splitlines()[1] == "PER,Bob,100"
    whole = httpx.get(f"{url}/v1/jobs/{job['id']}/download", params={"format": "json"}).json()
    assert len(whole["rows"]) == 200 and whole["columns"] == ["id", "text"]
    assert len(predictor.calls) == calls


def test_api_job_cancel_queue_limit_and_unknown_ids(slow_server) -> None:
    url, _ = slow_server
    first = submit(url, csv_bytes(400)).json()
    second = submit(url, csv_bytes(40)).json()
    assert httpx.get(f"{url}/v1/jobs/{second['id']}").json()["queue_position"] == 1
    full = submit(url, csv_bytes(4))
    assert full.status_code == 503 and full.json()["error"] == "job_queue_full"
    assert full.headers["retry-after"] == "10" and "2 CSV jobs are already queued or running" in full.json()["message"]
    assert wait_until(lambda: httpx.get(f"{url}/v1/jobs/{first['id']}").json()["rows_done"] > 0, 10)
    cancelled = httpx.delete(f"{url}/v1/jobs/{first['id']}").json()
    assert cancelled["status"] == "cancelled" and 0 < cancelled["rows_done"] < 400
    time.sleep(0.3)
    assert httpx.get(f"{url}/v1/jobs/{first['id']}").json()["rows_done"] == cancelled["rows_done"]  # stopped
    # The queue moves on: the second job runs and finishes, and a new job is accepted again.
    assert wait_until(lambda: httpx.get(f"{url}/v1/jobs/{second['id']}").json()["status"] == "done", 30)
    assert submit(url, csv_bytes(4)).status_code == 202
    missing = httpx.get(f"{url}/v1/jobs/not-a-job")
    assert missing.status_code == 404 and missing.json()["error"] == "no_such_job"
    assert httpx.get(f"{url}/v1/jobs/not-a-job/rows").status_code == 404


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [(b"id,body\n1,x\n", 422, "invalid_csv"), (b"id,text\n" + b"1,x\n" * 20_001, 413, "too_many_rows")],
)
def test_api_job_refuses_bad_uploads_at_once(slow_server, data: bytes, status: int, code: str) -> None:
    url, _ = slow_server
    answer = submit(url, data)
    assert answer.status_code == status and answer.json()["error"] == code
