"""The rollback service's service layer.

For now it validates that the batch has backups (the `backups` collection the executors write)
and refuses clearly when it has none; compensation of job types with `compensate` hooks is
built on this (see issue "Job types that do real work, backups, and the rollback service")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.codec import envelope_for
from contracts.envelope import Envelope, deterministic_event_id
from contracts.events import Event, RollbackFailed, RollbackRequested, RollbackStarted
from contracts.topics import Topics
from rollback.adapters.backups import Backups
from servicekit.publisher import EventPublisher, Outgoing


@dataclass
class Rollbacks:
    backups: Backups
    publisher: EventPublisher
    topics: Topics

    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        for env, event in items:
            if isinstance(event, RollbackRequested):
                await self._on_requested(env, event)

    async def _on_requested(self, env: Envelope, e: RollbackRequested) -> None:
        rollback_id = deterministic_event_id(e.batch_id, "rollback", env.event_id)
        backups = await self.backups.count(e.batch_id)
        out: list[Event] = [
            RollbackStarted(
                batch_id=e.batch_id,
                rollback_id=rollback_id,
                dry_run=e.dry_run,
                planned_jobs=backups,
            )
        ]
        if backups == 0:
            out.append(
                RollbackFailed(
                    batch_id=e.batch_id,
                    rollback_id=rollback_id,
                    reason="the batch has no backups: nothing was recorded that could be restored",
                )
            )
        await self.publisher.publish(
            [
                Outgoing(
                    self.topics.rollback_events,
                    e.batch_id,
                    envelope_for(
                        ev,
                        producer="rollback",
                        tenant=env.tenant,
                        event_id=deterministic_event_id(rollback_id, ev.TYPE),
                    ),
                )
                for ev in out
            ]
        )
