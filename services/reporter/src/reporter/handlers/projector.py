"""The reporter's service layer: turn consumed events into read-model writes; announce a
report when a batch finishes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.codec import envelope_for
from contracts.envelope import Envelope, deterministic_event_id, utcnow
from contracts.events import (
    BatchArchiveRecorded,
    BatchDeleted,
    BatchPurged,
    BatchReportReady,
    BatchSnapshot,
    Event,
)
from contracts.topics import Topics
from reporter.adapters.metrics import EVENTS_PROJECTED, PROJECTION_LAG, REPORTS_READY
from reporter.adapters.store import MongoProjectionStore
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)

FINAL = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})


@dataclass
class Projector:
    store: MongoProjectionStore
    publisher: EventPublisher
    topics: Topics

    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        await self.store.apply(items)
        for _, event in items:
            # Retention: batch-api kept the report, so the job views may go; or the batch
            # was deleted (by retention or by hand). All are idempotent deletes.
            if isinstance(event, BatchArchiveRecorded):
                await self.store.drop_job_views(event.batch_id)
            elif isinstance(event, BatchPurged | BatchDeleted):
                await self.store.drop_batch(event.batch_id)
        now = utcnow()
        for env, _ in items:
            PROJECTION_LAG.observe(max(0.0, (now - env.occurred_at).total_seconds()))
            EVENTS_PROJECTED.labels(env.type).inc()
        reports = [
            self._report(env, event)
            for env, event in items
            if isinstance(event, BatchSnapshot) and event.status in FINAL
        ]
        if reports:
            await self.publisher.publish(reports)
            for report in reports:
                REPORTS_READY.labels(report.envelope.data["status"]).inc()

    def _report(self, env: Envelope, e: BatchSnapshot) -> Outgoing:
        c = e.counts
        finished = c.completed + c.failed
        report = BatchReportReady(
            batch_id=e.batch_id,
            status=e.status,
            total=c.total,
            completed=c.completed,
            failed=c.failed,
            success_rate=round(c.completed / finished, 4) if finished else 0.0,
        )
        event_id = deterministic_event_id(e.batch_id, "report", str(env.seq))
        out = envelope_for(report, producer="reporter", tenant=env.tenant, event_id=event_id)
        return Outgoing(self.topics.reports, e.batch_id, out)
