"""Batches whose items add up to more than Kafka takes in one message, and items or params
that would not fit in one: the API chunks by size, refuses what cannot fit with a 422
before storing anything, and a batch stored before those limits (its chunk too large for
Kafka) is cancelled with the reason instead of failing every start of the API."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_support import store, wait_for_status
from stack_support import Stack, ready_status, service_process

from devstack.probes import free_port

pytestmark = pytest.mark.e2e

# An http.request to a closed local port fails at once; with one attempt, each job just ends.
TARGET = "http://127.0.0.1:9/"


def item(body_bytes: int) -> dict[str, Any]:
    return {"url": TARGET, "method": "POST", "body": "x" * body_bytes}


def batch(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    config = {"retry": {"max_attempts": 1}, **extra.pop("config", {})}
    return {"name": "large", "job_type": "http.request", "items": items, "config": config, **extra}


async def test_items_adding_up_past_a_kafka_message_all_run(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    """1,000 items of 2 KB (2 MB: twice what Kafka takes in one message) were one chunk, and
    the POST a 500 after the batch was stored. Now they are chunked by size and all run."""
    created = await api.post("/v1/batches", json=batch([item(2000)] * 1000))
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    async with store(stack.mongodb_url, stack.database) as db:
        doc = await db["batches"].find_one({"_id": batch_id})
    assert doc is not None
    assert doc["chunks"] >= 4  # at most 512 KiB of items each
    done = await wait_for_status(api, batch_id, {"completed_with_errors", "failed"}, 120)
    assert done["progress"]["failed"] + done["progress"]["completed"] == 1000


async def test_an_upload_is_chunked_by_size_too(api: httpx.AsyncClient) -> None:
    draft = await api.post("/v1/batches", json={**batch([]), "items": None, "draft": True})
    assert draft.status_code == 201, draft.text
    batch_id = draft.json()["id"]
    added = await api.post(f"/v1/batches/{batch_id}/items", json={"items": [item(3000)] * 600})
    assert added.status_code == 202, added.text
    submitted = await api.post(f"/v1/batches/{batch_id}/submit")
    assert submitted.status_code == 202, submitted.text
    page = (await api.get(f"/v1/batches/{batch_id}/items", params={"limit": 1000})).json()
    assert [i["index"] for i in page["items"]] == list(range(600))  # dense, in upload order
    assert len({i["id"].split("-")[0] for i in page["items"]}) >= 4  # chunks of <= 512 KiB
    done = await wait_for_status(api, batch_id, {"completed_with_errors", "failed"}, 120)
    assert done["progress"]["total"] == 600


async def test_an_item_too_large_for_a_message_is_refused_and_nothing_stored(
    api: httpx.AsyncClient,
) -> None:
    name = f"too large {uuid.uuid4().hex[:6]}"
    response = await api.post(
        "/v1/batches", json={**batch([item(10), item(300 * 1024), item(10)]), "name": name}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["item"] for e in problem["errors"]] == [1]
    assert "262,144" in problem["detail"]
    listed = await api.get("/v1/batches", params={"q": name})
    assert listed.json()["items"] == []


async def test_params_too_large_to_go_with_every_job_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches",
        json=batch([item(10)], config={"params": {"blob": "y" * (300 * 1024)}}),
    )
    assert response.status_code == 422, response.text
    assert "params are" in response.text


async def test_a_stored_batch_too_large_for_kafka_is_cancelled_and_the_api_still_starts(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str, mongodb_server: str, tmp_path: Path
) -> None:
    """As a batch stored before the limits: one chunk of 2 MB, its submission unfinished
    (the POST failed). An API starting finishes unfinished submissions: that one could never
    be, and kept every start from getting ready. Beside it, an ordinary unfinished one, and
    one whose create stopped before its second chunk was stored: it is cancelled rather than
    half of it run."""
    ids = []
    for _ in range(3):
        draft = await api.post("/v1/batches", json={**batch([item(10)] * 2), "draft": True})
        assert draft.status_code == 201, draft.text
        ids.append(draft.json()["id"])
    too_large, ordinary, half_stored = ids
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    async with store(stack.mongodb_url, stack.database) as db:
        await db["batch_uploads"].update_one(
            {"_id": f"{too_large}:0"}, {"$set": {"items": [item(2000)] * 1000}}
        )
        await db["batches"].update_one({"_id": too_large}, {"$set": {"total": 1000}})
        await db["batches"].update_one({"_id": half_stored}, {"$set": {"total": 4, "chunks": 2}})
        for batch_id in ids:
            await db["batches"].update_one(
                {"_id": batch_id},
                {
                    "$set": {
                        "phase": "submitted",
                        "submission": "publishing",
                        "submitted_at": long_ago,
                    }
                },
            )

    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": f"{mongodb_server}/{stack.database}",
        "BATCHYARD_TOPIC_PREFIX": stack.prefix,
        "BATCHYARD_HTTP_PORT": str(port),
    }
    with service_process("batchyard-api", env, tmp_path / "batch-api.log") as process:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            ready = await ready_status(f"http://127.0.0.1:{port}/readyz")
            if ready == 200:
                break
            await asyncio.sleep(0.5)
        log = (tmp_path / "batch-api.log").read_text(errors="replace")
        assert ready == 200, f"the API did not get ready:\n{log[-3000:]}"

    refused = (await api.get(f"/v1/batches/{too_large}")).json()
    assert refused["status"] == "cancelled"
    assert "too large" in refused["reason"]
    done = await wait_for_status(api, ordinary, {"completed_with_errors", "failed"}, 60)
    assert done["progress"]["total"] == 2
    halved = (await api.get(f"/v1/batches/{half_stored}")).json()
    assert halved["status"] == "cancelled"
    assert "before every item of it was stored" in halved["reason"]
    assert halved["progress"]["completed"] == halved["progress"]["failed"] == 0
