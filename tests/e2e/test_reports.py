"""A batch's report (JSON and CSV) and its ZIP export over HTTP, against the real stack: a
batch where some demo.sleep jobs fail permanently gives exact counts, success rate and
failures; another tenant's or an unknown batch is a 404."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import zipfile
from typing import Any

import httpx
import pytest
from stack_support import Stack
from tenancy import other_tenant_admin

pytestmark = pytest.mark.e2e

FAIL = {"seconds": 0, "fail_first_attempts": 5, "fail_with": "permanent"}
ITEMS = [
    {"seconds": 0},
    FAIL,
    {"seconds": 0.1},
    {"seconds": 0},
    FAIL,
    {"seconds": 0.2},
    {"seconds": 0},
]
FAILED = {1, 4}


async def finished_batch(api: httpx.AsyncClient) -> str:
    response = await api.post(
        "/v1/batches",
        json={"name": "report me", "job_type": "demo.sleep", "items": ITEMS},
    )
    assert response.status_code == 201, response.text
    batch_id: str = response.json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        batch = (await api.get(f"/v1/batches/{batch_id}")).json()
        if batch["status"] == "completed_with_errors":
            # job views converge a moment after the batch view
            report = (await api.get(f"/v1/batches/{batch_id}/report")).json()
            if report["totals"].get("completed") == 5 and report["totals"].get("failed") == 2:
                return batch_id
        await asyncio.sleep(0.3)
    raise AssertionError(f"batch {batch_id} never finished: {batch}")


def check_rows(batch_id: str, rows: list[dict[str, str]]) -> None:
    assert [r["job_id"] for r in rows] == [f"{batch_id}.{i}" for i in range(len(ITEMS))]
    for i, row in enumerate(rows):
        assert row["index"] == str(i)
        if i in FAILED:
            assert row["status"] == "failed"
            assert row["error_class"] == "DemoFailure"
            assert row["error_message"] == "demo failure on attempt 1"
            assert row["output"] == ""
        else:
            assert row["status"] == "completed"
            assert row["error_class"] == ""
            assert float(row["duration_s"]) >= 0
            # what the job returned: demo.sleep's is the time it slept and its attempt
            output = json.loads(row["output"])
            assert output == {"slept_s": ITEMS[i].get("seconds", 0), "attempt": 1}
        assert row["attempt"] == "1"


async def test_report_json_and_csv(api: httpx.AsyncClient) -> None:
    batch_id = await finished_batch(api)
    url = f"/v1/batches/{batch_id}/report"
    report: dict[str, Any] = (await api.get(url)).json()
    assert report["batch_id"] == batch_id
    assert report["name"] == "report me"
    assert report["job_type"] == "demo.sleep"
    assert report["status"] == "completed_with_errors"
    assert report["totals"] == {"total": 7, "completed": 5, "failed": 2}
    assert report["success_rate"] == pytest.approx(5 / 7)
    assert report["failed_count"] == 2
    assert report["failed_truncated"] is False
    assert [f["job_id"] for f in report["failed_jobs"]] == [f"{batch_id}.1", f"{batch_id}.4"]
    assert {f["error_class"] for f in report["failed_jobs"]} == {"DemoFailure"}
    for key in ("avg_duration_s", "p50_duration_s", "p95_duration_s"):
        assert report[key] is not None
        assert report[key] >= 0
    assert report["p50_duration_s"] <= report["p95_duration_s"]
    # demo.sleep's numeric outputs are its metrics: completed jobs only
    assert report["metrics"] == {"attempt": 5, "slept_s": pytest.approx(0.3)}

    for response in (
        await api.get(url, params={"format": "csv"}),
        await api.get(url, headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        lines = response.text.splitlines()
        assert lines[0] == (
            "job_id,index,status,attempt,duration_s,error_class,error_message,output,warnings,"
            "skip_reason"
        )
        check_rows(batch_id, list(csv.DictReader(io.StringIO(response.text))))

    assert (await api.get(url, params={"format": "xml"})).status_code == 422
    missing = await api.get("/v1/batches/b_000000000000nothere00/report")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/v1/batches/b_000000000000nothere00/export")).status_code == 404


async def test_export_zip_holds_the_batch_its_jobs_report_and_attempts(
    api: httpx.AsyncClient,
) -> None:
    batch_id = await finished_batch(api)
    response = await api.get(f"/v1/batches/{batch_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["batch.json", "jobs.csv", "report.json", "events.jsonl"]
    assert archive.testzip() is None
    batch = json.loads(archive.read("batch.json"))
    assert batch["id"] == batch_id
    assert batch["status"] == "completed_with_errors"
    rows = list(csv.DictReader(io.StringIO(archive.read("jobs.csv").decode())))
    assert len(rows) == len(ITEMS)
    check_rows(batch_id, rows)
    report = json.loads(archive.read("report.json"))
    assert report["totals"] == {"total": 7, "completed": 5, "failed": 2}
    lines = [json.loads(line) for line in archive.read("events.jsonl").splitlines()]
    log = [e for e in lines if e["type"] == "batch_event"]
    # the batch's own history first, oldest first: creation, submission, start, the end
    kinds = [e["event"] for e in log]
    assert kinds[0] == "BatchCreated", kinds
    assert (
        kinds.index("BatchSubmitted") < kinds.index("BatchStarted") < kinds.index("BatchCompleted")
    ), kinds
    assert "BatchProgress" not in kinds
    assert log[-1]["status"] == "completed_with_errors"
    assert [e["at"] for e in log] == sorted(e["at"] for e in log)
    events = [e for e in lines if e["type"] == "job_attempt"]
    assert len(lines) == len(log) + len(events)
    assert sorted(e["job_id"] for e in events) == sorted(f"{batch_id}.{i}" for i in range(7))
    assert {e["status"] for e in events if e["index"] in FAILED} == {"failed"}
    assert {e["status"] for e in events if e["index"] not in FAILED} == {"completed"}


async def test_another_tenants_batch_is_not_found(api: httpx.AsyncClient, stack: Stack) -> None:
    response = await api.post(
        "/v1/batches", json={"name": "mine", "job_type": "demo.sleep", "items": [{"seconds": 0}]}
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    assert (await api.get(f"/v1/batches/{batch_id}/report")).status_code == 200
    key = await other_tenant_admin(stack)
    other = {"Authorization": f"Bearer {key}"}
    for path in ("report", "report?format=csv", "export"):
        response = await api.get(f"/v1/batches/{batch_id}/{path}", headers=other)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == f"no batch {batch_id}"


async def test_an_export_over_the_cap_is_refused_with_the_way_out(api: httpx.AsyncClient) -> None:
    # the e2e stack caps exports at 5,000 jobs (BATCHYARD_API_MAX_EXPORT_JOBS)
    response = await api.post(
        "/v1/batches",
        json={
            "name": "too big to export",
            "job_type": "demo.sleep",
            "items": [{}] * 5001,
            "draft": True,
        },
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    for path in (f"/v1/batches/{batch_id}/export", f"/v1/batches/{batch_id}/report?format=csv"):
        refused = await api.get(path)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert (problem["jobs"], problem["limit"]) == (5001, 5000)
        assert f"/v1/batches/{batch_id}/jobs" in problem["detail"]
    # the JSON report is a summary, not an export: still served
    assert (await api.get(f"/v1/batches/{batch_id}/report")).status_code == 200
