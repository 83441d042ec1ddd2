"""Analytics of a batch and statistics across batches, over HTTP on the running stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from jobs_support import wait_for_status
from stack_support import Stack

pytestmark = pytest.mark.e2e


async def test_a_batch_with_retries_and_failures_explains_how_it_ran(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    items = (
        [{"seconds": 0.1}] * 6
        + [{"seconds": 0.1, "fail_first_attempts": 1, "error_class": "Flaky"}] * 3
        + [
            {
                "fail_first_attempts": 9,
                "fail_with": "permanent",
                "error_class": "BadRow",
                "severity": "critical",  # the job type's word
            }
        ]
        * 2
    )
    created = await api.post(
        "/v1/batches",
        json={
            "name": "analysed",
            "job_type": "demo.sleep",
            "items": items,
            "config": {"retry": {"max_attempts": 3, "backoff_initial_s": 0.1}},
        },
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    await wait_for_status(api, batch_id, {"completed_with_errors"}, 90)

    # The job views may trail the batch's status by a moment.
    for _ in range(40):
        response = await api.get(f"/v1/batches/{batch_id}/analytics")
        assert response.status_code == 200, response.text
        analytics = response.json()
        if analytics["durations"]["count"] == 11:
            break
        await asyncio.sleep(0.5)
    assert analytics["durations"]["count"] == 11
    assert analytics["durations"]["p50_s"] >= 0.1
    assert analytics["errors"] == [
        {"error_class": "Flaky", "count": 3, "retryable": 3, "severity": "medium"},
        {"error_class": "BadRow", "count": 2, "retryable": 0, "severity": "critical"},
    ]
    assert analytics["severities"] == {"low": 0, "medium": 3, "high": 0, "critical": 2}
    assert analytics["retries"] == {"attempts": 14, "retried_jobs": 3, "extra_attempts": 3}
    points = analytics["throughput"]["points"]
    assert sum(p["completed"] for p in points) == 9
    assert sum(p["failed"] for p in points) == 2
    assert analytics["throughput"]["bucket_s"] >= 1
    assert len(points) <= 60

    # And the same batch counts in the tenant's statistics of the last hour.
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    stats = await api.get("/v1/stats", params={"since": since})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["batches_by_status"].get("completed_with_errors", 0) >= 1
    demo = body["job_types"]["demo.sleep"]
    assert demo["jobs_completed"] >= 9
    assert demo["jobs_failed"] >= 2
    assert 0 < demo["success_rate"] < 1
    assert body["jobs_per_s"] > 0

    assert (await api.get("/v1/batches/b_nothere/analytics")).status_code == 404
    backwards = await api.get("/v1/stats", params={"since": since, "until": "2020-01-01T00:00:00Z"})
    assert backwards.status_code == 422
