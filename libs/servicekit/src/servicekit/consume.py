"""Consuming events in batches with at-least-once semantics.

A batch is decoded; poison records go to the dead-letter topic; the rest are handed to the
service's handler in order. Offsets are committed only after the handler returns (FastStream's
`NACK_ON_ERROR`: an exception rewinds the partitions, so the batch is delivered again). The
handler must therefore be idempotent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.codec import PoisonMessage, decode
from contracts.envelope import Envelope
from contracts.events import Event
from servicekit.deadletter import DeadLetters
from servicekit.kafka import records_of

log = logging.getLogger(__name__)

Decoded = tuple[Envelope, Event]
BatchHandler = Callable[[Sequence[Decoded]], Awaitable[None]]


def subscribe_batches(
    broker: KafkaBroker,
    topics: Sequence[str],
    *,
    group_id: str,
    handler: BatchHandler,
    dead_letters: DeadLetters,
    max_records: int = 500,
    batch_timeout_ms: int = 20,
    from_beginning: bool = True,
    title: str | None = None,
) -> None:
    """Registers a batch subscriber on `broker` for `topics` in consumer group `group_id`."""
    failures = 0

    @broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        auto_offset_reset="earliest" if from_beginning else "latest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=title or f"{group_id}:{','.join(topics)}",
    )
    async def on_batch(message: KafkaMessage) -> None:  # raw records: we decode ourselves
        nonlocal failures
        decoded: list[Decoded] = []
        for record in records_of(message):
            try:
                decoded.append(decode(record.value or b""))
            except PoisonMessage as exc:
                await dead_letters.send(record, exc.reason)
        try:
            await handler(decoded)
        except Exception:
            failures += 1
            log.exception("handling a batch of %d failed; it will be redelivered", len(decoded))
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            raise
        failures = 0
