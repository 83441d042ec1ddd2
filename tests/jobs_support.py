"""Helpers of the job-type e2e tests: waiting for a batch, reading and writing the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from readmodels import settled_job_views
from stack_support import Stack


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
        await asyncio.sleep(0.3)
    raise AssertionError(f"batch {batch_id} stayed {body.get('status')}: {body.get('progress')}")


@asynccontextmanager
async def store(mongodb_url: str, database: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield client[database]
    finally:
        await client.close()


async def request_rollback(
    kafka_bootstrap: str,
    prefix: str,
    batch_id: str,
    *,
    dry_run: bool = False,
    job_ids: list[str] | None = None,
) -> str:
    """Publishes `RollbackRequested` as the API does; returns the rollback's id."""
    from aiokafka import AIOKafkaProducer

    from contracts.codec import encode, envelope_for
    from contracts.envelope import deterministic_event_id, new_event_id
    from contracts.events import RollbackRequested
    from contracts.topics import Topics

    event = RollbackRequested(
        batch_id=batch_id, requested_by="e2e", dry_run=dry_run, job_ids=job_ids
    )
    envelope = envelope_for(event, producer="e2e", event_id=new_event_id())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(prefix).batch_commands, encode(envelope), key=batch_id.encode()
        )
    finally:
        await producer.stop()
    return deterministic_event_id(batch_id, "rollback", envelope.event_id)


async def wait_for_rollback(
    db: AsyncDatabase[dict[str, Any]], rollback_id: str, statuses: set[str], within_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    doc: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        doc = await db["rollbacks"].find_one({"_id": rollback_id})
        if doc is not None and doc["status"] in statuses:
            return doc
        await asyncio.sleep(0.5)
    raise AssertionError(f"rollback {rollback_id} is {doc and doc['status']}: {doc}")


async def import_library(api: httpx.AsyncClient, templates: list[dict[str, Any]]) -> list[str]:
    response = await api.post("/v1/library/templates/import", json={"templates": templates})
    assert response.status_code == 201, response.text
    assert response.json()["imported"] == len(templates)
    ids: list[str] = response.json()["ids"]
    return ids


async def metric_totals(stack: Stack, batch_id: str, jobs: int) -> dict[str, float]:
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == jobs and all(v["status"] == "completed" for v in vs),
    )
    totals: dict[str, float] = {}
    for view in views:
        for name, value in (view.get("metrics") or {}).items():
            totals[name] = totals.get(name, 0) + value
    return totals
