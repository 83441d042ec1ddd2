"""Consuming events in batches with at-least-once semantics.

A batch is decoded; records that are not events go to the dead-letter topic; the rest are
handed to the service's handler in order. Offsets are committed only after the handler returns
(FastStream's `NACK_ON_ERROR`: an exception rewinds the partitions, so the batch is delivered
again). The handler must therefore be idempotent.

Failures are told apart by `is_transient`. A transient one (the store or the broker
unreachable, a timeout, `TransientError`, or a store error the server marks retryable or
whose code says it passes: a write conflict, a time limit, a primary stepping down or
shutting down) redelivers the batch after a backoff, for as long as it takes: nothing is
given up because a server restarted or was busy. Any other exception is taken to be about the
events themselves: the batch is applied again one event at a time, and an event that still
fails after `APPLY_ATTEMPTS` tries goes to the dead-letter topic with the reason and its
original bytes, so one bad event cannot stop a partition."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from contracts.codec import PoisonMessage, decode
from contracts.envelope import Envelope
from contracts.events import Event
from servicekit.deadletter import DeadLetters
from servicekit.kafka import records_of
from servicekit.metrics import watch_group
from servicekit.tracing import consuming

log = logging.getLogger(__name__)

Decoded = tuple[Envelope, Event]
BatchHandler = Callable[[Sequence[Decoded]], Awaitable[None]]
APPLY_ATTEMPTS = 3


class TransientError(Exception):
    """Raised by a handler when it cannot apply events now but may later (e.g. it is not
    the leader yet): the batch is redelivered, never dead-lettered."""


TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    KafkaError,
    OSError,
    TimeoutError,
    TransientError,
)


# Server error codes that say "try again" (the names in MongoDB's error_codes.yml); FerretDB
# uses the same codes where it has the condition.
TRANSIENT_STORE_CODES = frozenset(
    {
        50,  # MaxTimeMSExpired
        64,  # WriteConcernFailed
        91,  # ShutdownInProgress
        112,  # WriteConflict
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError")


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says "not now" rather than "not this event": the events are redelivered
    until it passes, never dead-lettered."""
    if isinstance(exc, TRANSIENT):
        return True
    if isinstance(exc, PyMongoError) and any(exc.has_error_label(x) for x in TRANSIENT_LABELS):
        return True
    return isinstance(exc, OperationFailure) and exc.code in TRANSIENT_STORE_CODES


async def _left_to_the_handler(message: StreamMessage[Any]) -> None:
    """FastStream's own decoder wraps and JSON-parses every record of a batch for the body
    argument; the handler reads the raw records and decodes them once itself."""
    return None


def subscribe_batches(
    broker: KafkaBroker,
    topics: Sequence[str],
    *,
    group_id: str,
    handler: BatchHandler,
    dead_letters: DeadLetters,
    max_records: int = 500,
    wait_ms: int = 500,
    fetch_max_wait_ms: int = 500,
    from_beginning: bool = True,
    title: str | None = None,
) -> BatchSubscriber:
    """Registers and returns a batch subscriber on `broker` for `topics` in consumer group
    `group_id`; its lag is measured (`servicekit.metrics`) and traced messages get consumer
    spans. It hands records over as soon as any have arrived, and waits up to `wait_ms` for
    some when there are none (`polls_without_sleeping`).

    `fetch_max_wait_ms` is how long the broker may hold a fetch for partitions with nothing
    new. With one broker, aiokafka sends no second fetch while one is held, and leaves out of
    it the partitions whose records it still buffers: a busy partition drained meanwhile is
    fetched again only when the held fetch returns. A subscriber whose few busy partitions
    must not wait that long (the reporter's lag) lowers it, at the price of more fetches
    while idle."""
    failures = 0
    watch_group(broker, group_id, topics, from_beginning=from_beginning)

    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=wait_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
        auto_offset_reset="earliest" if from_beginning else "latest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=title or f"{group_id}:{','.join(topics)}",
        decoder=_left_to_the_handler,
    )
    polls_without_sleeping(subscriber, wait_ms)

    @subscriber
    async def on_batch(message: KafkaMessage) -> None:  # raw records: we decode ourselves
        nonlocal failures
        pairs: list[tuple[ConsumerRecord[bytes, bytes], Decoded]] = []
        traced: list[tuple[str, Envelope]] = []
        for record in records_of(message):
            try:
                pairs.append((record, decode(record.value or b"")))
            except PoisonMessage as exc:
                await dead_letters.send(record, exc.reason)
                continue
            if pairs[-1][1][0].traceparent:
                traced.append((record.topic, pairs[-1][1][0]))
        try:
            with consuming(group_id, traced):
                try:
                    await handler([decoded for _, decoded in pairs])
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.exception("applying a batch of %d failed; applying one by one", len(pairs))
                    await _apply_one_by_one(handler, pairs, dead_letters)
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            log.exception("handling a batch of %d failed; it will be redelivered", len(pairs))
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            raise
        failures = 0

    return subscriber


def polls_without_sleeping(subscriber: Any, wait_ms: int) -> None:
    """Makes a FastStream batch subscriber take records as soon as any have arrived.

    FastStream's own poll (`BatchSubscriber.get_msg`, 0.7) waits up to `batch_timeout_ms`
    for records and, when none came, then sleeps as long again before the next poll: records
    that arrive meanwhile wait for the sleep to end. Under load a consumer often catches up
    for a moment, so the sleep came back again and again: the reporter sat idle for ~400 ms in
    the middle of a 5,000-job burst while events piled up (its projection lag's p99 was over
    1 s), and the scheduler, whose poll is on the path of every dispatch, the same.
    aiokafka's `getmany` already returns as soon as records are there, so this subscriber's
    poll is just that: wait up to `wait_ms` for records, return what arrived, no sleep
    (docs/performance.md, session 13)."""
    if not callable(getattr(type(subscriber), "get_msg", None)):
        name = type(subscriber).__name__
        raise TypeError(f"{name} does not poll with get_msg: FastStream's subscribers changed")

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        batches = await consumer.getmany(timeout_ms=wait_ms, max_records=subscriber.max_records)
        return tuple(chain.from_iterable(batches.values()))

    subscriber.get_msg = get_msg


async def _apply_one_by_one(
    handler: BatchHandler,
    pairs: Sequence[tuple[ConsumerRecord[bytes, bytes], Decoded]],
    dead_letters: DeadLetters,
) -> None:
    """Applies each event alone; one that keeps failing (not transiently) is dead-lettered."""
    for record, decoded in pairs:
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                await handler([decoded])
                break
            except Exception as exc:
                if is_transient(exc):
                    raise
                if attempt == APPLY_ATTEMPTS:
                    reason = f"apply failed: {type(exc).__name__}: {exc}"
                    await dead_letters.send(record, reason)
                else:
                    await asyncio.sleep(0.05 * attempt)
