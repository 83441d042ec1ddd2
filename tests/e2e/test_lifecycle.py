"""Lifecycle over HTTP against the real stack: pause holds progress and resume finishes the
batch; cancel ends it `cancelled` with every job terminal; retry re-runs failed jobs; an action
the current status does not allow is a 409 problem naming that status; patch, archive, delete,
duplicate, and a rollback of a job type that cannot roll back refused."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kafka_support import read_all
from pymongo import AsyncMongoClient
from readmodels import settled_job_views
from stack_support import Stack

from contracts.topics import Topics

pytestmark = pytest.mark.e2e

TERMINAL_JOB = {"completed", "failed", "cancelled", "skipped"}


async def create(api: httpx.AsyncClient, items: list[dict[str, Any]], **extra: Any) -> str:
    body = {"name": "lifecycle", "job_type": "demo.sleep", "items": items, **extra}
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def wait_for(
    api: httpx.AsyncClient,
    batch_id: str,
    check: Callable[[dict[str, Any]], bool],
    within_s: float = 60,
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(f"/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if check(body):
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"batch {batch_id} never matched: {body.get('status')} {body}")


def status_is(*statuses: str) -> Callable[[dict[str, Any]], bool]:
    return lambda b: b["status"] in statuses


async def act(
    api: httpx.AsyncClient, batch_id: str, action: str, body: Any = None
) -> httpx.Response:
    return await api.post(f"/v1/batches/{batch_id}/actions/{action}", json=body)


def assert_conflict(response: httpx.Response, status: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/conflict"
    assert status in problem["detail"]
    assert problem["batch_status"] == status


async def test_pause_holds_progress_and_resume_finishes(api: httpx.AsyncClient) -> None:
    batch_id = await create(api, [{"seconds": 0.4}] * 16, config={"max_concurrent_jobs": 2})
    await wait_for(api, batch_id, lambda b: b["progress"]["completed"] >= 2)
    response = await act(api, batch_id, "pause")
    assert response.status_code == 202, response.text
    assert response.json() == {
        "batch_id": batch_id,
        "action": "pause",
        "status": "running",
        "plan": None,
    }
    paused = await wait_for(
        api,
        batch_id,
        lambda b: (
            b["status"] == "paused"
            and b["progress"]["running"] == 0
            and b["progress"]["dispatched"] == 0
        ),
        within_s=20,
    )
    held = paused["progress"]["completed"]
    assert held < 16
    assert_conflict(await act(api, batch_id, "pause"), "paused")
    await asyncio.sleep(2.0)
    still = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert still["status"] == "paused"
    assert still["progress"]["completed"] == held
    # a paused batch has no ETA, and its running time stands still
    assert still["progress"]["eta_s"] is None
    assert still["progress"]["active_s"] == paused["progress"]["active_s"]
    assert still["progress"]["elapsed_s"] - still["progress"]["active_s"] >= 2.0

    response = await act(api, batch_id, "resume")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "paused"
    done = await wait_for(api, batch_id, status_is("completed"))
    assert done["progress"]["completed"] == 16
    # its rate counts the time it ran, not the pause
    progress = done["progress"]
    assert progress["elapsed_s"] - progress["active_s"] >= 2.0
    assert progress["throughput_per_s"] == pytest.approx(16 / progress["active_s"], abs=0.02)


async def test_cancel_ends_cancelled_with_every_job_terminal(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    batch_id = await create(api, [{"seconds": 0.5}] * 30, config={"max_concurrent_jobs": 3})
    await wait_for(api, batch_id, lambda b: b["progress"]["completed"] >= 1)
    response = await act(api, batch_id, "cancel")
    assert response.status_code == 202, response.text
    done = await wait_for(api, batch_id, status_is("cancelled"), within_s=30)
    progress = done["progress"]
    assert progress["cancelled"] > 0
    assert progress["completed"] + progress["failed"] + progress["cancelled"] == 30
    assert progress["pending"] == progress["running"] == progress["dispatched"] == 0
    # its rate counts the jobs that ran, not those the cancel ended
    ran = progress["completed"] + progress["failed"]
    assert progress["throughput_per_s"] == pytest.approx(ran / progress["active_s"], abs=0.02)
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: all(v["status"] in TERMINAL_JOB for v in vs),
        within_s=20,
    )
    assert all(v["status"] in TERMINAL_JOB for v in views), [v["status"] for v in views]
    assert_conflict(await act(api, batch_id, "cancel"), "cancelled")
    assert_conflict(await act(api, batch_id, "resume"), "cancelled")


async def test_retry_reruns_failed_jobs(api: httpx.AsyncClient) -> None:
    items = [{"seconds": 0}, {"fail_first_attempts": 1}, {"seconds": 0}, {"fail_first_attempts": 1}]
    batch_id = await create(
        api, items, config={"retry": {"max_attempts": 1, "backoff_initial_s": 0}}
    )
    first = await wait_for(api, batch_id, status_is("completed_with_errors"))
    assert first["progress"]["failed"] == 2
    assert first["progress"]["completed"] == 2
    response = await act(api, batch_id, "retry")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "completed_with_errors"
    done = await wait_for(api, batch_id, status_is("completed"))
    assert done["progress"]["completed"] == 4
    assert done["progress"]["failed"] == 0
    assert_conflict(await act(api, batch_id, "retry"), "completed")


async def test_patch_archive_delete_duplicate_and_rollback_refused(api: httpx.AsyncClient) -> None:
    batch_id = await create(api, [{"seconds": 0.05}] * 5, config={"max_concurrent_jobs": 1})
    patched = await api.patch(
        f"/v1/batches/{batch_id}",
        json={"name": "renamed", "tags": ["a", "b"], "priority": "high"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "renamed"
    assert patched.json()["tags"] == ["a", "b"]
    unknown = await api.patch(f"/v1/batches/{batch_id}", json={"surprise": 1})
    assert unknown.status_code == 422
    late = await api.patch(f"/v1/batches/{batch_id}", json={"config": {"max_concurrent_jobs": 3}})
    assert late.status_code == 409, late.text
    started = await act(api, batch_id, "start")
    assert started.status_code == 409, started.text
    assert started.json()["type"] == "/problems/conflict"
    early_delete = await api.delete(f"/v1/batches/{batch_id}")
    if early_delete.status_code != 204:  # finished already on a fast machine
        assert early_delete.status_code == 409
    done = await wait_for(api, batch_id, status_is("completed"))
    assert done["name"] == "renamed"
    assert done["priority"] == "high"

    # demo.sleep keeps no backups and cannot compensate: a rollback, planned or not, is refused
    # at once with the reason, and the batch keeps its status
    for body in ({"dry_run": True}, {}):
        refused = await act(api, batch_id, "rollback", body)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "/problems/rollback-unavailable"
        assert "job type demo.sleep cannot be rolled back" in refused.json()["detail"]
    assert (await api.get(f"/v1/batches/{batch_id}")).json()["status"] == "completed"
    bad = await act(api, batch_id, "rollback", {"dry_run": True, "what": 1})
    assert bad.status_code == 422

    copy = await act(api, batch_id, "duplicate")
    assert copy.status_code == 201, copy.text
    copy_id = copy.json()["id"]
    assert copy_id != batch_id
    assert copy.json()["progress"]["total"] == 5
    assert copy.json()["duplicate_of"] == batch_id
    copied = await wait_for(api, copy_id, status_is("completed"))
    assert copied["config"]["max_concurrent_jobs"] == 1

    archived = await act(api, batch_id, "archive")
    assert archived.status_code == 202, archived.text
    assert (await api.get(f"/v1/batches/{batch_id}")).json()["status"] == "archived"
    assert_conflict(await act(api, batch_id, "archive"), "archived")
    assert_conflict(await act(api, batch_id, "retry"), "archived")
    gone = await api.delete(f"/v1/batches/{batch_id}")
    assert gone.status_code == 204, gone.text
    missing = await api.get(f"/v1/batches/{batch_id}")
    assert missing.status_code == 404
    assert (await act(api, batch_id, "pause")).status_code == 404
    assert (await act(api, copy_id, "explode")).status_code == 422


async def test_a_new_priority_and_deadline_reach_the_scheduler(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    created = await api.post(
        "/v1/batches",
        json={
            "name": "reprioritised",
            "job_type": "demo.sleep",
            "priority": "low",
            "items": [{"seconds": 0.5}] * 20,
            "config": {"max_concurrent_jobs": 1},
        },
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    await wait_for(api, batch_id, status_is("running"))
    patched = await api.patch(
        f"/v1/batches/{batch_id}", json={"priority": "critical", "deadline": "2030-01-01T00:00:00Z"}
    )
    assert patched.status_code == 200, patched.text
    # The scheduler's next snapshot of the batch carries the new weight.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        views = client[stack.database]["batch_views"]
        deadline = time.monotonic() + 30
        while (await views.find_one({"_id": batch_id}) or {}).get("priority_level") != 10:
            assert time.monotonic() < deadline, await views.find_one({"_id": batch_id})
            await asyncio.sleep(0.3)
    finally:
        await client.close()
    await api.post(f"/v1/batches/{batch_id}/actions/cancel")


async def test_a_create_repeated_after_its_batch_was_deleted_does_not_make_it_again(
    api: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
    body = {"name": "once", "job_type": "demo.sleep", "items": [{"seconds": 0}]}
    first = await api.post("/v1/batches", json=body, headers=key)
    assert first.status_code == 201, first.text
    batch_id = first.json()["id"]
    repeat = await api.post("/v1/batches", json=body, headers=key)
    assert (repeat.status_code, repeat.json()["id"]) == (200, batch_id)
    await wait_for(api, batch_id, status_is("completed"))
    assert (await api.delete(f"/v1/batches/{batch_id}")).status_code == 204

    late = await api.post("/v1/batches", json=body, headers=key)  # e.g. a client's late retry
    assert late.status_code == 410, late.text
    assert late.headers["content-type"].startswith("application/problem+json")
    assert late.json()["type"] == "/problems/batch-deleted"
    assert late.json()["batch_id"] == batch_id
    assert (await api.get(f"/v1/batches/{batch_id}")).status_code == 404
    fresh = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
    assert (await api.post("/v1/batches", json=body, headers=fresh)).status_code == 201


async def test_repeats_racing_the_first_create_never_publish_half_a_batch(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    """Repeats of a create sent while the first still stores the batch's chunks (a client
    retrying after a timeout, or a double click): one batch, with every item, and every
    BatchSubmitted that a repeat publishes names all its chunks. A repeat had published the
    chunks stored so far (a 500 when none was yet; seen with consolidations, whose repeats
    come sooner: test_template_library.py)."""
    key = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
    # twelve chunks of two large items each (a chunk holds at most 512 KiB), stored one
    # after the other: a window of a good part of a second
    items = [{"seconds": 0, "warnings": [f"{n}" + "w" * 200_000]} for n in range(24)]
    body = {"name": "raced create", "job_type": "demo.sleep", "items": items}

    async def post_after(delay_s: float) -> httpx.Response:
        await asyncio.sleep(delay_s)
        return await api.post("/v1/batches", json=body, headers=key)

    # repeats spread over the time the first one takes, so some land while it stores chunks
    answers = await asyncio.gather(*(post_after(n * 0.015) for n in range(12)))
    assert sorted(a.status_code for a in answers) == [200] * 11 + [201], [
        a.text[:300] for a in answers if a.status_code >= 300
    ]
    (batch_id,) = {a.json()["id"] for a in answers}
    done = await wait_for(api, batch_id, status_is("completed"), within_s=120)
    assert (done["progress"]["total"], done["progress"]["completed"]) == (24, 24)
    topics = Topics(stack.prefix)
    records = await read_all(kafka_bootstrap, topics, [topics.batch_commands])
    submitted = [
        json.loads(r.value)
        for r in records
        if r.value and batch_id.encode() in r.value and b'"BatchSubmitted"' in r.value
    ]
    assert submitted
    assert {s["data"]["chunks"] for s in submitted} == {12}, "half of it was published"


async def test_the_concurrency_of_a_sequential_batch_or_with_a_config_is_refused(
    api: httpx.AsyncClient,
) -> None:
    body = {"name": "one by one", "job_type": "demo.sleep", "items": [{"seconds": 5}] * 3}
    body["config"] = {"execution": "sequential"}
    batch_id = (await api.post("/v1/batches", json=body)).json()["id"]
    sequential = await api.patch(f"/v1/batches/{batch_id}", json={"max_concurrent_jobs": 4})
    assert sequential.status_code == 422, sequential.text
    assert "one job at a time" in sequential.json()["detail"]
    both = await api.patch(
        f"/v1/batches/{batch_id}",
        json={"max_concurrent_jobs": 4, "config": {"max_concurrent_jobs": 4}},
    )
    assert both.status_code == 422, both.text
    too_many = await api.patch(f"/v1/batches/{batch_id}", json={"max_concurrent_jobs": 10_001})
    assert too_many.status_code == 422, too_many.text
    await api.post(f"/v1/batches/{batch_id}/actions/cancel")
