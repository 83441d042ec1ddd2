"""Publishing and batch consumption on the real broker: order per key, poison records go to
the dead-letter topic with their bytes and reason, and a failing handler gets the batch again
(offsets are committed only after the handler returns); a store failure that passes by itself
(unreachable, a write conflict, a time limit) is retried until it does, never dead-lettered."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo.errors import AutoReconnect, ExecutionTimeout, OperationFailure

from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import BatchPauseRequested
from contracts.topics import Topics
from servicekit.consume import BatchHandler, Decoded, subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.kafka import ensure_topics, make_broker, topic_partitions
from servicekit.publisher import KafkaEventPublisher, Outgoing

pytestmark = pytest.mark.integration


async def wait_until(predicate: object, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class Subscribed:
    dead_letters: DeadLetters
    publisher: KafkaEventPublisher
    topic: str

    async def publish(self, events: Sequence[Envelope]) -> None:
        await self.publisher.publish([Outgoing(self.topic, "b1", e) for e in events])


@asynccontextmanager
async def subscribed(
    kafka_bootstrap: str, topics: Topics, handler: BatchHandler, **options: Any
) -> AsyncIterator[Subscribed]:
    """A started broker with `handler` subscribed to the batch commands topic (group `g`);
    the broker is stopped on the way out."""
    await ensure_topics(kafka_bootstrap, topic_partitions(topics))
    broker = make_broker(kafka_bootstrap, client_id="it")
    dead_letters = DeadLetters(broker, topics.dead_letter, "it")
    subscribe_batches(
        broker,
        [topics.batch_commands],
        group_id=f"{topics.prefix}g",
        handler=handler,
        dead_letters=dead_letters,
        **options,
    )
    await broker.start()
    try:
        yield Subscribed(dead_letters, KafkaEventPublisher(broker), topics.batch_commands)
    finally:
        await broker.stop()


def pauses(n: int) -> list[Envelope]:
    return [
        envelope_for(BatchPauseRequested(batch_id="b1", requested_by=str(i)), producer="t")
        for i in range(n)
    ]


async def test_round_trip_dead_letter_and_redelivery(kafka_bootstrap: str, topics: Topics) -> None:
    seen: list[str] = []
    calls = 0

    async def handler(items: Sequence[Decoded]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1 and items:
            raise RuntimeError("the store is down")  # first delivery fails: must come again
        seen.extend(e.event_id for e, _ in items)

    async with subscribed(kafka_bootstrap, topics, handler) as running:
        events = pauses(20)
        await running.publish(events)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(topics.batch_commands, b"{not json", key=b"b1")
        await producer.stop()
        await wait_until(lambda: len(set(seen)) >= 20)
        assert calls >= 2
        ids = [e.event_id for e in events]
        assert [i for i in seen if i in ids][:20] == ids, "per-key order was not kept"

        consumer = AIOKafkaConsumer(
            topics.dead_letter, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        dead = orjson.loads(record.value)
        assert dead["reason"].startswith("not JSON")
        assert base64.b64decode(dead["value_b64"]) == b"{not json"
        assert dead["source_topic"] == topics.batch_commands


async def test_a_poison_record_too_large_to_copy_whole_is_dead_lettered_in_part(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """A record of 900 KB that is no event: its dead-letter copy (base64, a third larger)
    would be more than Kafka takes, so the consumer could never get past it. The copy keeps
    the first 512 KiB and says how large the record was; the events after it are handled."""
    seen: list[str] = []

    async def handler(items: Sequence[Decoded]) -> None:
        seen.extend(e.event_id for e, _ in items)

    async with subscribed(kafka_bootstrap, topics, handler) as running:
        poison = b"x" * 900_000
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topics.batch_commands, poison, key=b"b1")
        finally:
            await producer.stop()
        after = pauses(3)
        await running.publish(after)
        await wait_until(lambda: {e.event_id for e in after} <= set(seen))
        [dead] = await dead_letter_records(kafka_bootstrap, topics.dead_letter, 1)
        assert dead["reason"].startswith("not JSON")
        assert dead["value_bytes"] == 900_000
        assert dead["value_truncated"] is True
        assert base64.b64decode(dead["value_b64"]) == poison[: 512 * 1024]


async def dead_letter_records(kafka_bootstrap: str, topic: str, n: int) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        out: list[dict[str, str]] = []
        while len(out) < n:
            record = await asyncio.wait_for(consumer.getone(), 30)
            out.append(orjson.loads(record.value))
        return out
    finally:
        await consumer.stop()


async def test_an_event_that_cannot_be_applied_is_dead_lettered_and_the_rest_go_on(
    kafka_bootstrap: str, topics: Topics
) -> None:
    events = pauses(30)
    bad = events[7].event_id
    applied: list[str] = []

    async def handler(items: Sequence[Decoded]) -> None:
        for envelope, _ in items:
            if envelope.event_id == bad:
                raise ValueError("no such batch")  # about the event: retrying will not help
        applied.extend(e.event_id for e, _ in items)

    async with subscribed(kafka_bootstrap, topics, handler) as running:
        await running.publish(events)
        good = [e.event_id for e in events if e.event_id != bad]
        await wait_until(lambda: set(good) <= set(applied))
        assert bad not in applied
        [dead] = await dead_letter_records(kafka_bootstrap, topics.dead_letter, 1)
        assert dead["reason"] == "apply failed: ValueError: no such batch"
        assert orjson.loads(base64.b64decode(dead["value_b64"]))["event_id"] == bad


@pytest.mark.parametrize(
    "failure",
    [
        AutoReconnect("the store restarts"),
        OperationFailure("WriteConflict", code=112),
        ExecutionTimeout("operation exceeded time limit", code=50),
    ],
    ids=["store unreachable", "write conflict", "time limit"],
)
async def test_a_transient_failure_is_retried_until_it_passes_and_never_dead_lettered(
    kafka_bootstrap: str, topics: Topics, failure: Exception
) -> None:
    calls = 0
    applied: list[str] = []

    async def handler(items: Sequence[Decoded]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise failure
        applied.extend(e.event_id for e, _ in items)

    async with subscribed(kafka_bootstrap, topics, handler) as running:
        events = pauses(5)
        await running.publish(events)
        await wait_until(lambda: {e.event_id for e in events} <= set(applied), timeout=60)
        assert calls > 5
        assert running.dead_letters.count == 0


async def test_a_record_arriving_after_an_idle_moment_is_taken_at_once(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """FastStream's own batch poll sleeps as long as its wait after a poll that found
    nothing, so a record arriving in that sleep waited for it (the reporter stood idle for
    ~400 ms mid-burst). Subscribers poll without the sleep: with a wait of 1.5 s, a record
    sent 1.8 s into an idle moment (in what was the sleep) is handled within a fraction."""
    handled: list[tuple[str, float]] = []

    async def handler(items: Sequence[Decoded]) -> None:
        now = asyncio.get_running_loop().time()
        handled.extend((e.requested_by, now) for _, e in items)  # type: ignore[attr-defined]

    async with subscribed(kafka_bootstrap, topics, handler, wait_ms=1500) as running:

        async def send(label: str) -> float:
            pause = BatchPauseRequested(batch_id="b1", requested_by=label)
            await running.publish([envelope_for(pause, producer="t")])
            return asyncio.get_running_loop().time()

        await send("first")  # the consumer has joined and polls once this is handled
        await wait_until(lambda: [x for x, _ in handled] == ["first"])
        await asyncio.sleep(1.8)  # the next poll found nothing after 1.5 s
        sent_at = await send("after the idle moment")
        await wait_until(lambda: len(handled) == 2, timeout=10)
        assert handled[1][0] == "after the idle moment"
        assert handled[1][1] - sent_at < 0.5, f"taken {handled[1][1] - sent_at:.2f} s after"
