"""The first vertical slice over HTTP: a batch goes in, every job runs once, the read model
shows it completed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.e2e


async def wait_for_status(
    api: httpx.AsyncClient, batch_id: str, statuses: set[str], within_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(f"/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"batch {batch_id} stayed {body.get('status')}: {body.get('progress')}")


async def test_a_small_batch_completes(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches",
        json={
            "name": "hello",
            "job_type": "demo.sleep",
            "items": [{"seconds": 0}] * 20,
            "config": {"max_concurrent_jobs": 5},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "queued"
    assert created["progress"]["total"] == 20
    assert response.headers["location"] == f"/v1/batches/{created['id']}"
    done = await wait_for_status(api, created["id"], {"completed"}, within_s=60)
    progress = done["progress"]
    assert progress["completed"] == 20
    assert progress["failed"] == 0
    assert progress["percent"] == 100.0
    assert done["started_at"] is not None
    assert done["finished_at"] is not None


async def test_ten_thousand_jobs_complete_each_exactly_once(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    items = [{"seconds": 0}] * 10_000
    response = await api.post(
        "/v1/batches",
        json={
            "name": "ten-k",
            "job_type": "demo.sleep",
            "items": items,
            "config": {"max_concurrent_jobs": 500},
        },
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    done = await wait_for_status(api, batch_id, {"completed"}, within_s=600)
    assert done["progress"]["completed"] == 10_000
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == 10_000 and all(v["status"] == "completed" for v in vs),
    )
    assert len(views) == 10_000
    assert {v["index"] for v in views} == set(range(10_000))
    assert all(v["status"] == "completed" for v in views)
    assert all(v["attempt"] == 1 for v in views), "a job ran more than once"


async def test_failures_are_retried_then_reported(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches",
        json={
            "name": "flaky",
            "job_type": "demo.sleep",
            "items": [{"fail_first_attempts": 1}] * 5 + [{"fail_first_attempts": 9}] * 2,
            "config": {"retry": {"max_attempts": 2, "backoff_initial_s": 0.1}},
        },
    )
    assert response.status_code == 201, response.text
    done = await wait_for_status(api, response.json()["id"], {"completed_with_errors"}, 90)
    assert done["progress"]["completed"] == 5
    assert done["progress"]["failed"] == 2


async def test_list_shows_the_tenants_batches_newest_first(api: httpx.AsyncClient) -> None:
    ids = []
    for name in ("list-a", "list-b"):
        r = await api.post(
            "/v1/batches", json={"name": name, "job_type": "demo.sleep", "items": [{}]}
        )
        ids.append(r.json()["id"])
    for batch_id in ids:
        await wait_for_status(api, batch_id, {"completed"}, 60)
    page = (await api.get("/v1/batches", params={"limit": 1})).json()
    assert page["items"][0]["id"] == ids[1]
    assert page["next_cursor"]
    second = (
        await api.get("/v1/batches", params={"limit": 1, "cursor": page["next_cursor"]})
    ).json()
    assert second["items"][0]["id"] == ids[0]
