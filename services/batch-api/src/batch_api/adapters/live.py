"""A live tail of `batch.events`, `job.events` and `rollback.events` for server-sent events.

Each API process reads the topics from their newest offsets without a consumer group (every
process sees every event; nothing is committed) and hands each decoded event to the
subscribers whose tenant (and batch, if given) it concerns: snapshots, failed attempts, and
rollbacks' events (of a rollback's progress, at most two a second per batch). A subscriber
that does not keep up loses its oldest events rather than slowing the tail; it re-reads the
batch's state on the next snapshot anyway, since every snapshot carries absolute counts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from contracts.codec import PoisonMessage, decode
from contracts.envelope import Envelope
from contracts.events import (
    BatchSnapshot,
    Event,
    JobFailed,
    RollbackCompleted,
    RollbackFailed,
    RollbackProgress,
    RollbackStarted,
)
from contracts.topics import Topics

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000
ROLLBACK_EVENTS = (RollbackStarted, RollbackProgress, RollbackCompleted, RollbackFailed)
LIVE_EVENTS = (BatchSnapshot, JobFailed, *ROLLBACK_EVENTS)
# A rollback announces each job it restored (hundreds a second); streams only need to know
# that it moved on, so at most one progress event per batch is passed on per this period.
PROGRESS_EVERY_S = 0.5


@dataclass(eq=False)
class Subscription:
    tenant: str
    batch_id: str | None
    queue: asyncio.Queue[tuple[Envelope, Event]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )

    def offer(self, env: Envelope, event: Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait((env, event))


class LiveFeed:
    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.subscribers: set[Subscription] = set()
        self.started = asyncio.Event()
        # batch id → the seq of the newest snapshot seen (read caches compare views to it)
        self.latest_seq: dict[str, int] = {}
        self._progress_passed: dict[str, float] = {}  # batch id → when one was passed on

    def subscribe(self, tenant: str, batch_id: str | None) -> Subscription:
        sub = Subscription(tenant, batch_id)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    async def run(self) -> None:
        """Tails the topics until cancelled (a background task of the service)."""
        consumer = AIOKafkaConsumer(
            self.topics.batch_events,
            self.topics.job_events,
            self.topics.rollback_events,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        self.started.set()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for records in batches.values():
                    for record in records:
                        self._dispatch(record.value, record.topic == self.topics.batch_events)
        finally:
            self.started.clear()
            await consumer.stop()

    def _dispatch(self, raw: bytes | None, batch_event: bool = False) -> None:
        if raw is None or not (self.subscribers or batch_event):
            return
        try:
            env, event = decode(raw)
        except PoisonMessage:
            return  # the consumers that own these topics dead-letter it
        if not isinstance(event, LIVE_EVENTS):
            return
        if isinstance(event, RollbackProgress) and not self._passes_progress(event.batch_id):
            return
        if isinstance(event, BatchSnapshot):
            if len(self.latest_seq) > 100_000:
                self.latest_seq.clear()  # entries come back with the next snapshot
            seen = self.latest_seq.get(event.batch_id, -1)
            self.latest_seq[event.batch_id] = max(seen, env.seq)
        for sub in list(self.subscribers):
            if sub.tenant == env.tenant and sub.batch_id in (None, event.batch_id):
                sub.offer(env, event)

    def _passes_progress(self, batch_id: str) -> bool:
        now = time.monotonic()
        if now - self._progress_passed.get(batch_id, -PROGRESS_EVERY_S) < PROGRESS_EVERY_S:
            return False
        if len(self._progress_passed) > 10_000:
            self._progress_passed.clear()
        self._progress_passed[batch_id] = now
        return True
