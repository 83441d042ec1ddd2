"""A rolling upgrade runs two versions side by side, and the contracts only ever add optional
fields: what a newer version wrote, with a field this one does not know (inside `config`
too), is read by this one instead of being refused.

- An event from a newer batch-api on the real broker: the scheduler runs the batch, the
  reporter projects it (it was dead-lettered when the field was inside `config`).
- A draft stored by a newer batch-api replica: this one submits it, and it runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from jobs_support import store, wait_for_status
from kafka_support import read_all
from stack_support import Stack

from contracts.codec import decode, encode, envelope_for
from contracts.events import BatchCreated, BatchItemsAdded, BatchSubmitted, ExecutorHeartbeat
from contracts.topics import Topics

pytestmark = pytest.mark.e2e

NEWER = {"added_in_a_later_version": {"anything": 1}}


def with_newer_fields(body: dict[str, Any]) -> dict[str, Any]:
    """`body` as a newer producer would send it: a field more at the top, in `config` and in
    its `retry`."""
    config = {**body["config"], **NEWER, "retry": {**body["config"]["retry"], **NEWER}}
    return {**body, **NEWER, "config": config}


async def test_a_batch_created_by_a_newer_producer_runs(stack: Stack, kafka_bootstrap: str) -> None:
    batch_id = f"b_newer{uuid.uuid4().hex[:12]}"
    created = BatchCreated.model_validate(
        {
            "batch_id": batch_id,
            "name": "from a newer batch-api",
            "job_type": "demo.sleep",
            "owner": "admin",
            "config": {"retry": {"max_attempts": 2}},
            "created_at": datetime.now(UTC),
        }
    )
    envelopes = [
        envelope_for(created, producer="batch-api").model_copy(
            update={"data": with_newer_fields(created.body())}
        ),
        envelope_for(
            BatchItemsAdded(batch_id=batch_id, chunk=0, first_index=0, items=[{}, {}, {}]),
            producer="batch-api",
        ),
        envelope_for(
            BatchSubmitted(batch_id=batch_id, total_items=3, chunks=1), producer="batch-api"
        ),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                Topics(stack.prefix).batch_commands, encode(envelope), key=batch_id.encode()
            )
    finally:
        await producer.stop()

    async with store(stack.mongodb_url, stack.database) as db:
        deadline = time.monotonic() + 60
        view: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            view = await db["batch_views"].find_one({"_id": batch_id})
            if view is not None and view.get("status") == "completed":
                break
            await asyncio.sleep(0.3)
        assert view is not None, "the reporter never projected the batch"
        assert view["status"] == "completed", view
        assert view["counts"]["completed"] == 3
        assert view["config"]["retry"]["max_attempts"] == 2  # the fields it knows are kept


async def test_a_draft_stored_by_a_newer_replica_is_submitted_and_runs(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    response = await api.post(
        "/v1/batches",
        json={
            "name": "drafted by a newer replica",
            "job_type": "demo.sleep",
            "draft": True,
            "items": [{}, {}],
            "config": {"retry": {"max_attempts": 2}},
        },
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    async with store(stack.mongodb_url, stack.database) as db:
        changed = await db["batches"].update_one(
            {"_id": batch_id},
            {"$set": {"config.added_in_a_later_version": 1, "config.retry.added_too": True}},
        )
        assert changed.modified_count == 1

    submitted = await api.post(f"/v1/batches/{batch_id}/submit")
    assert submitted.status_code == 202, submitted.text
    done = await wait_for_status(api, batch_id, {"completed"}, within_s=60)
    assert done["progress"]["completed"] == 2


async def test_an_executor_from_before_grouped_dispatches_gets_a_message_a_job(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    topics = Topics(stack.prefix)
    beat = ExecutorHeartbeat(
        executor_id=f"executor-before-groups-{uuid.uuid4().hex[:6]}",
        slots_total=1,
        slots_free=1,
        running=0,
        job_types=[],
        sent_at=datetime.now(UTC),
    )
    body = {k: v for k, v in beat.body().items() if k != "grouped_dispatches"}
    old_beat = envelope_for(beat, producer=beat.executor_id).model_copy(
        update={"data": body, "schema_version": 2}
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def beating() -> None:
        while True:
            await producer.send_and_wait(
                topics.executor_heartbeats, encode(old_beat), key=beat.executor_id.encode()
            )
            await asyncio.sleep(0.5)

    async def run_batch(name: str) -> list[tuple[str, int]]:
        """Runs a batch of 24 short jobs, 4 at once (so that most are dispatched after others
        ended: how long they take is known); each dispatch message of it: its type and how
        many jobs it holds."""
        response = await api.post(
            "/v1/batches",
            json={
                "name": name,
                "job_type": "demo.sleep",
                "items": [{}] * 24,
                "config": {"max_concurrent_jobs": 4},
            },
        )
        assert response.status_code == 201, response.text
        batch_id = response.json()["id"]
        await wait_for_status(api, batch_id, {"completed"}, within_s=60)
        records = await read_all(kafka_bootstrap, topics, [topics.job_dispatch])
        sent = [decode(r.value)[0] for r in records]
        return [(e.type, len(e.data.get("jobs", [None]))) for e in sent if e.batch_id == batch_id]

    beats = asyncio.create_task(beating())
    try:
        await asyncio.sleep(1.5)  # the scheduler has seen it
        assert await run_batch("beside an old executor") == [("JobDispatched", 1)] * 24
    finally:
        beats.cancel()
        await asyncio.gather(beats, return_exceptions=True)
        await producer.stop()
    await asyncio.sleep(6)  # past the scheduler's executor TTL (5 s): the old one is gone
    upgraded = await run_batch("after the upgrade")
    assert "JobsDispatched" in {kind for kind, _ in upgraded}
    assert sum(count for _, count in upgraded) == 24
