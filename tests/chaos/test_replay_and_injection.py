"""The read models are a pure function of the event log.

- Replaying every topic from offset 0 into an empty database rebuilds documents identical to
  the live ones.
- Publishing a finished batch's events again, twice each and in reverse order, changes no
  read model and no batch state; a malformed record among them lands on the dead-letter topic
  with its bytes and the reporter goes on."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter, defaultdict
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from chaos_support import create_batch
from kafka_support import partitions_of, read_all
from pymongo import AsyncMongoClient
from readmodels import settled_job_views
from stack_support import Stack, drop_database

from contracts.codec import PoisonMessage, decode
from contracts.topics import Topics
from reporter.adapters.store import MongoProjectionStore
from servicekit.jobviews import stored_views

pytestmark = pytest.mark.chaos

TERMINAL_JOB = {"completed", "failed", "skipped", "cancelled"}
MALFORMED = b'{"type": "JobCompleted", "data": '


def projected_topics(topics: Topics) -> list[str]:
    return [topics.batch_commands, topics.batch_events, topics.job_events, topics.rollback_events]


async def wait_consumed(
    bootstrap: str, group: str, topics: Topics, names: list[str], within_s: float = 60
) -> None:
    """Until `group` has committed every partition of `topics` up to its end offset."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions_of(topics, names))
        deadline = time.monotonic() + within_s
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = {
                tp: end - (committed[tp].offset if tp in committed else 0)
                for tp, end in ends.items()
                if end > (committed[tp].offset if tp in committed else 0)
            }
            if not behind:
                return
            assert time.monotonic() < deadline, f"{group} still behind: {behind}"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await admin.close()


async def read_models(mongodb_url: str, database: str, batch_id: str) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        db = client[database]
        batch = await db["batch_views"].find_one({"_id": batch_id})
        buckets = [b async for b in db["job_views"].find({"batch_id": batch_id})]
        # views decoded: the binary's bytes also follow the order a view's fields were set in
        return {
            "batch": batch,
            "jobs": {b["_id"]: b | {"views": stored_views(b)} for b in buckets},
        }
    finally:
        await client.close()


async def replay(bootstrap: str, topics: Topics, mongodb_url: str, database: str) -> None:
    """Projects every record from offset 0 into `database` with the reporter's own store."""
    records = await read_all(bootstrap, topics, projected_topics(topics))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        store = MongoProjectionStore(client[database])
        await store.setup()
        by_partition: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for record in records:
            try:
                by_partition[(record.topic, record.partition)].append(decode(record.value or b""))
            except PoisonMessage:
                continue
        # Partitions are applied one after the other: an order the live reporter never saw.
        for decoded in by_partition.values():
            for start in range(0, len(decoded), 500):
                await store.apply(decoded[start : start + 500])
    finally:
        await client.close()


async def test_replay_from_zero_rebuilds_identical_read_models_and_injection_changes_nothing(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    topics = Topics(prefix=chaos_stack.prefix)
    items = (
        [{"seconds": 0.01}] * 30
        + [{"seconds": 0.01, "fail_first_attempts": 1}] * 10
        + [{"seconds": 0.01, "fail_first_attempts": 5, "fail_with": "permanent"}] * 5
    )
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        batch_id = await create_batch(
            api,
            {
                "name": "replay",
                "job_type": "demo.sleep",
                "items": items,
                "config": {"retry": {"max_attempts": 3, "backoff_initial_s": 0.1}},
            },
        )
        deadline = time.monotonic() + 120
        while (body := (await api.get(f"/v1/batches/{batch_id}")).json())["status"] not in (
            "completed",
            "completed_with_errors",
            "failed",
        ):
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.3)
        assert body["status"] == "completed_with_errors", body
        assert (body["progress"]["completed"], body["progress"]["failed"]) == (40, 5)

        views = await settled_job_views(
            chaos_stack.mongodb_url,
            chaos_stack.database,
            batch_id,
            lambda vs: len(vs) == len(items) and all(v["status"] in TERMINAL_JOB for v in vs),
        )
        assert sum(v["attempt"] > 1 for v in views) == 10
        group = f"{chaos_stack.prefix}reporter"
        await wait_consumed(kafka_bootstrap, group, topics, projected_topics(topics))
        live = await read_models(chaos_stack.mongodb_url, chaos_stack.database, batch_id)

        replay_db = f"{chaos_stack.database}_replay"
        try:
            await replay(kafka_bootstrap, topics, chaos_stack.mongodb_url, replay_db)
            rebuilt = await read_models(chaos_stack.mongodb_url, replay_db, batch_id)
        finally:  # the stack drops its own database when it stops, not this one
            drop_database(chaos_stack.mongodb_url, replay_db)
        assert rebuilt == live

        # Duplicates, replays and disorder: every record of the batch again, twice, reversed.
        ours = [
            r
            for r in await read_all(kafka_bootstrap, topics, projected_topics(topics))
            if r.key == batch_id.encode()
        ]
        # the batch's records are all there: an outcome for every attempt (a job that ended
        # within 20 ms has no `JobStarted`), the retries, the commands and the snapshots
        kinds = Counter(orjson.loads(r.value or b"{}").get("type") for r in ours)
        # (at least: a record sent twice by a producer's retry is one more to replay)
        assert kinds["JobCompleted"] >= 40, kinds
        assert kinds["JobFailed"] >= 10 + 5, kinds  # a permanent failure is not retried
        assert kinds["JobRetryScheduled"] >= 10, kinds
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for record in reversed(ours):
                for _ in range(2):
                    await producer.send(record.topic, record.value, key=record.key)
            await producer.send_and_wait(topics.job_events, MALFORMED, key=batch_id.encode())
        finally:
            await producer.stop()
        await wait_consumed(kafka_bootstrap, group, topics, projected_topics(topics))
        assert await read_models(chaos_stack.mongodb_url, chaos_stack.database, batch_id) == live
        after = (await api.get(f"/v1/batches/{batch_id}")).json()
        assert after["status"] == "completed_with_errors"
        assert after["progress"] == body["progress"]

    dead = [
        orjson.loads(r.value or b"{}")
        for r in await read_all(kafka_bootstrap, topics, [topics.dead_letter])
    ]
    ours_dead = [d for d in dead if base64.b64decode(d["value_b64"]) == MALFORMED]
    assert {d["consumer"] for d in ours_dead} >= {"reporter"}
    assert all(d["reason"] for d in ours_dead)
