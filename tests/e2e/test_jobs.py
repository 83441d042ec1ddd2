"""Jobs of a batch over HTTP: list by status with pages, one job with its attempts, errors,
output, item and timings; retry of a failed job; cancel of a running and a waiting job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e


async def until(
    api: httpx.AsyncClient, url: str, check: Callable[[dict[str, Any]], bool], within_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        if check(body):
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"{url} never matched: {body}")


async def test_list_get_and_retry_jobs(api: httpx.AsyncClient) -> None:
    items = [
        {"seconds": 0},
        {"seconds": 0},
        {"seconds": 0},
        {"seconds": 0},
        {"fail_first_attempts": 1},
        {"fail_first_attempts": 1, "fail_with": "permanent"},
    ]
    config = {"retry": {"max_attempts": 2, "backoff_initial_s": 0}, "max_concurrent_jobs": 2}
    response = await api.post(
        "/v1/batches",
        json={"name": "jobs", "job_type": "demo.sleep", "items": items, "config": config},
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    url = f"/v1/batches/{batch_id}"
    await until(api, url, lambda b: b["status"] == "completed_with_errors")
    jobs_url = f"{url}/jobs"
    await until(
        api,
        f"{jobs_url}/{batch_id}.4",
        lambda j: j["status"] == "completed" and len(j["attempts"]) == 2,
    )

    first = (await api.get(jobs_url, params={"limit": 4})).json()
    assert [j["index"] for j in first["items"]] == [0, 1, 2, 3]
    assert first["next_cursor"]
    rest = (await api.get(jobs_url, params={"limit": 4, "cursor": first["next_cursor"]})).json()
    assert [j["index"] for j in rest["items"]] == [4, 5]
    assert rest["next_cursor"] is None

    failed = (await api.get(jobs_url, params={"status": "failed"})).json()["items"]
    assert [j["id"] for j in failed] == [f"{batch_id}.5"]
    job = failed[0]
    assert job["error"] == {
        "class": "DemoFailure",
        "message": "demo failure on attempt 1",
        "retryable": False,
        "traceback": None,  # a failure the job meant: no stack trace
        "severity": "high",  # permanent
    }
    assert job["item"] == items[5]
    assert [a["status"] for a in job["attempts"]] == ["failed"]

    retried = (await api.get(f"{jobs_url}/{batch_id}.4")).json()
    assert retried["status"] == "completed"
    assert retried["attempt"] == 2
    assert retried["output"] == {"slept_s": 0.0, "attempt": 2}
    assert retried["item"] == items[4]
    assert retried["error"] is None
    assert [a["status"] for a in retried["attempts"]] == ["failed", "completed"]
    assert retried["attempts"][0]["error"]["class"] == "DemoFailure"
    assert retried["attempts"][0]["error"]["retryable"] is True
    assert retried["started_at"]
    assert retried["finished_at"]
    assert retried["duration_s"] is not None

    for bad in (f"{batch_id}.6", f"{batch_id}.x", "other.1"):
        assert (await api.get(f"{jobs_url}/{bad}")).status_code == 404
    assert (await api.get(jobs_url, params={"status": "sleepy"})).status_code == 422
    assert (await api.get(jobs_url, params={"limit": 501})).status_code == 422
    conflict = await api.post(f"{jobs_url}/{batch_id}.0/retry")
    assert conflict.status_code == 409
    assert conflict.json()["job_status"] == "completed"
    assert (await api.post(f"{jobs_url}/{batch_id}.0/cancel")).status_code == 409

    accepted = await api.post(f"{jobs_url}/{batch_id}.5/retry")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {
        "batch_id": batch_id,
        "job_id": f"{batch_id}.5",
        "action": "retry",
        "status": "failed",
    }
    done = await until(api, url, lambda b: b["status"] == "completed")
    assert done["progress"]["completed"] == 6
    job = await until(api, f"{jobs_url}/{batch_id}.5", lambda j: j["status"] == "completed")
    assert [a["status"] for a in job["attempts"]] == ["failed", "completed"]


async def test_a_job_that_crashed_says_where(api: httpx.AsyncClient) -> None:
    items = [{"fail_first_attempts": 1, "fail_with": "crash"}]
    response = await api.post(
        "/v1/batches", json={"name": "crash", "job_type": "demo.sleep", "items": items}
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    job = await until(
        api, f"/v1/batches/{batch_id}/jobs/{batch_id}.0", lambda j: j["status"] == "failed"
    )
    error = job["error"]
    assert (error["class"], error["message"]) == ("RuntimeError", "demo crash on attempt 1")
    assert error["retryable"] is False
    # an exception the job did not mean to raise: where it was raised, innermost frame last
    assert error["traceback"].startswith("Traceback (most recent call last):")
    assert "jobtypes/demo.py" in error["traceback"]
    assert error["traceback"].endswith("RuntimeError: demo crash on attempt 1")
    assert error["severity"] == "critical"  # a bug, not a failure the job meant


async def test_a_completed_jobs_warnings_show_with_it_and_in_the_report(
    api: httpx.AsyncClient,
) -> None:
    items = [{"warnings": ["field `size` missing: took 0", "duplicate row ignored"]}, {}]
    response = await api.post(
        "/v1/batches", json={"name": "warned", "job_type": "demo.sleep", "items": items}
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    job = await until(
        api, f"/v1/batches/{batch_id}/jobs/{batch_id}.0", lambda j: j["status"] == "completed"
    )
    assert job["warnings"] == items[0]["warnings"]
    assert job["error"] is None
    quiet = await until(
        api, f"/v1/batches/{batch_id}/jobs/{batch_id}.1", lambda j: j["status"] == "completed"
    )
    assert quiet["warnings"] == []
    report = await until(
        api, f"/v1/batches/{batch_id}/report", lambda r: r["totals"].get("completed") == 2
    )
    assert (report["warned_jobs"], report["warnings_count"]) == (1, 2)
    assert [w["message"] for w in report["warnings"]] == items[0]["warnings"]
    assert {w["job_id"] for w in report["warnings"]} == {f"{batch_id}.0"}
    csv = (await api.get(f"/v1/batches/{batch_id}/report", params={"format": "csv"})).text
    header, first, second = csv.splitlines()[:3]
    assert header.split(",")[-2] == "warnings"
    assert '""field `size` missing: took 0""' in first  # a JSON array, quoted for CSV
    assert second.endswith(",,")  # no warnings, not skipped


async def test_cancel_a_running_and_a_waiting_job(api: httpx.AsyncClient) -> None:
    items = [{"seconds": 15}, {"seconds": 0}, {"seconds": 0}]  # still running when cancelled
    response = await api.post(
        "/v1/batches",
        json={
            "name": "cancel jobs",
            "job_type": "demo.sleep",
            "items": items,
            "config": {"max_concurrent_jobs": 1},
        },
    )
    batch_id = response.json()["id"]
    jobs_url = f"/v1/batches/{batch_id}/jobs"
    await until(api, f"{jobs_url}/{batch_id}.0", lambda j: j["status"] == "running")
    waiting = await api.post(f"{jobs_url}/{batch_id}.2/cancel")
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["status"] == "pending"
    running = await api.post(f"{jobs_url}/{batch_id}.0/cancel")
    assert running.status_code == 202, running.text
    assert running.json()["status"] == "running"
    await until(
        api,
        f"/v1/batches/{batch_id}",
        lambda b: b["status"] in ("completed", "completed_with_errors"),
    )
    # job views converge a moment after the batch view: wait for all three to be final
    final = ("completed", "cancelled", "failed")
    settled = await until(
        api,
        jobs_url,
        lambda p: len(p["items"]) == 3 and all(j["status"] in final for j in p["items"]),
    )
    statuses = {j["index"]: j["status"] for j in settled["items"]}
    assert statuses == {0: "cancelled", 1: "completed", 2: "cancelled"}
