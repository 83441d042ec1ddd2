"""Retention: archives and deletes a tenant's old terminal batches. Runs only in the scheduler
that holds the lease.

It keeps every tenant's policy (`RetentionPolicyChanged`, from batch-api) in `sched_retention`
and in memory. `tick` starts a tenant's periodic run once its period has passed since the last
one, recording the start first (`last_run_at`, in the store), so a restart or a new leader runs
it at most once per period. `RetentionRunRequested` runs it now (also when the policy is not
enabled: `enabled` governs the periodic runs), once per run id; a dry run changes nothing.

A run picks batches with `domain.retention.plan_retention` and works in chunks of bounded size.
For each chunk, under the engine's lock (so a retry cannot revive a batch in between), it
checks every batch again against its stored document and the engine's memory, announces
`BatchArchived` (or `BatchPurged`) and only then records it; a crash in between announces the
same batches again on the next run, and every owner applies them idempotently. The scheduler's
own per-job documents (item chunks, job states) go after the chunk is recorded. The run ends
with `RetentionRunCompleted`, which batch-api writes to the audit log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from contracts.codec import envelope_for
from contracts.envelope import Envelope, deterministic_event_id
from contracts.events import (
    BatchArchived,
    BatchDeleted,
    BatchPurged,
    Event,
    RetentionPolicyChanged,
    RetentionRunCompleted,
    RetentionRunRequested,
    RollbackCompleted,
    RollbackFailed,
)
from contracts.topics import Topics
from scheduler.adapters.store import SchedulerStore
from scheduler.domain.retention import (
    BatchAge,
    RetentionPolicy,
    archive_due,
    aware,
    batch_age,
    delete_due,
    plan_retention,
)
from scheduler.handlers.engine import LeadershipLost
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)
PRODUCER = "scheduler"
RECENT_RUNS = 50
LISTED_IDS = 1000

Trigger = Literal["schedule", "manual"]


class PolicyStore(Protocol):
    async def all_policies(self) -> list[dict[str, Any]]: ...
    async def save_policy(self, doc: dict[str, Any]) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def policy_of(doc: dict[str, Any] | None) -> RetentionPolicy:
    if doc is None:
        return RetentionPolicy()
    return RetentionPolicy(
        enabled=bool(doc.get("enabled")),
        archive_after_days=doc.get("archive_after_days"),
        failed_archive_after_days=doc.get("failed_archive_after_days"),
        delete_archived_after_days=doc.get("delete_archived_after_days"),
    )


@dataclass
class RetentionKeeper:
    policies: PolicyStore
    batches: SchedulerStore
    publisher: EventPublisher
    topics: Topics
    engine_lock: asyncio.Lock
    is_active: Callable[[str], bool]
    fence: Callable[[], bool] = lambda: True
    now: Callable[[], datetime] = utcnow
    period_s: float = 3600.0
    chunk_size: int = 100
    max_per_run: int = 10_000
    on_run: Callable[[RetentionRunCompleted, float], None] = lambda run, seconds: None
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Held for each change of a tenant's policy document, made of what is in memory: the
    # periodic tick and the consumer's handler change the same document (a policy changed
    # while the tick recorded its run was lost: the tick's write, of the old policy, came last).
    policy_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def recover(self) -> None:
        self.tenants = {d["_id"]: d for d in await self.policies.all_policies()}
        log.info("retention policies of %d tenants", len(self.tenants))

    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        for env, event in items:
            if isinstance(event, RetentionPolicyChanged):
                await self._policy_changed(env, event)
            elif isinstance(event, RetentionRunRequested):
                await self._run_requested(env, event)
            elif isinstance(event, RollbackCompleted) and not event.dry_run:
                await self._rollback_ended(event.batch_id, "rolled_back", env.occurred_at)
            elif isinstance(event, RollbackFailed):
                await self._rollback_ended(event.batch_id, "rollback_failed", env.occurred_at)
            elif isinstance(event, BatchDeleted):
                await self._deleted(event.batch_id)

    async def _policy_changed(self, env: Envelope, e: RetentionPolicyChanged) -> None:
        def changed(known: dict[str, Any] | None) -> dict[str, Any] | None:
            if known is not None and known.get("revision", -1) >= e.revision:
                return None  # a repeat or an older change
            return {
                "_id": env.tenant,
                "enabled": e.enabled,
                "archive_after_days": e.archive_after_days,
                "failed_archive_after_days": e.failed_archive_after_days,
                "delete_archived_after_days": e.delete_archived_after_days,
                "revision": e.revision,
                # A new policy's first periodic run comes one period from now, not at once.
                "last_run_at": (known or {}).get("last_run_at") or self.now(),
                "recent_runs": (known or {}).get("recent_runs", []),
            }

        await self._change(env.tenant, changed)

    async def _run_requested(self, env: Envelope, e: RetentionRunRequested) -> None:
        known = self.tenants.get(env.tenant)
        if known is not None and e.run_id in known.get("recent_runs", []):
            return  # ran already

        def ran(known: dict[str, Any] | None) -> dict[str, Any]:
            doc = dict(known or {"_id": env.tenant, "revision": -1})
            doc["recent_runs"] = [*doc.get("recent_runs", []), e.run_id][-RECENT_RUNS:]
            return doc

        await self.run(env.tenant, e.run_id, e.dry_run, "manual", e.requested_by)
        await self._change(env.tenant, ran)

    async def _rollback_ended(self, batch_id: str, outcome: str, at: datetime) -> None:
        # Under the engine's lock: the engine writes the same batch document when the rollback
        # ends (its status, its `seq`), and the local store (FerretDB v1) loses one of two
        # concurrent updates of a document (79 of 200 pairs of `$set`s of different fields,
        # measured); a lost engine write reset the batch's `seq`, and the next rollback's
        # snapshots then reused it (the read model kept `rollback_failed`).
        async with self.engine_lock:
            if not self.fence():
                raise LeadershipLost("not recording a rollback without the lease")
            if await self.batches.find_batch(batch_id) is None:
                return
            await self.batches.save_batches(
                [{"_id": batch_id, "rollback_finished_at": at, "rollback_outcome": outcome}]
            )

    async def tick(self) -> int:
        """Runs the periodic retention of every tenant whose period has passed; returns how
        many runs it made."""
        count = 0
        for tenant in list(self.tenants):
            if not self.fence():
                return count
            now = self.now()

            def due(doc: dict[str, Any] | None, now: datetime = now) -> dict[str, Any] | None:
                if doc is None or not doc.get("enabled"):
                    return None
                last = aware(doc.get("last_run_at"))
                if last is not None and (now - last).total_seconds() < self.period_s:
                    return None
                return {**doc, "last_run_at": now}

            if await self._change(tenant, due) is None:  # recorded first: at most once
                continue
            run_id = f"ret_{tenant}_{int(now.timestamp())}"
            await self.run(tenant, run_id, False, "schedule", "scheduler")
            count += 1
        return count

    async def run(
        self, tenant: str, run_id: str, dry_run: bool, trigger: Trigger, requested_by: str
    ) -> RetentionRunCompleted:
        """One run of the tenant's policy; announces and returns what it did (or, dry, what it
        would do)."""
        async with self.running:
            policy = policy_of(self.tenants.get(tenant))
            started = self.now()
            docs = await self.batches.tenant_batches(tenant)
            plan = plan_retention(policy, map(batch_age, docs), started, self.max_per_run)
            if dry_run:
                archived = [b.batch_id for b in plan.archive if not self.is_active(b.batch_id)]
                deleted = [b.batch_id for b in plan.delete]
            else:
                archived, deleted = [], []
                for chunk in chunks(plan.archive, self.chunk_size):
                    archived += await self._archive(tenant, run_id, policy, chunk)
                for chunk in chunks(plan.delete, self.chunk_size):
                    deleted += await self._purge(tenant, run_id, policy, chunk)
            finished = self.now()
            done = RetentionRunCompleted(
                run_id=run_id,
                dry_run=dry_run,
                trigger=trigger,
                requested_by=requested_by,
                started_at=started,
                finished_at=finished,
                archived=len(archived),
                deleted=len(deleted),
                archived_ids=archived[:LISTED_IDS],
                deleted_ids=deleted[:LISTED_IDS],
                skipped_non_terminal=plan.left_alone,
            )
            if not self.fence():
                raise LeadershipLost("not announcing a retention run without the lease")
            env = envelope_for(
                done,
                producer=PRODUCER,
                tenant=tenant,
                event_id=deterministic_event_id("retention-run", run_id),
            )
            await self.publisher.publish([Outgoing(self.topics.retention, tenant, env)])
            log.info(
                "retention run %s of %s (%s%s): %d archived, %d deleted, %d not terminal",
                run_id,
                tenant,
                trigger,
                ", dry" if dry_run else "",
                len(archived),
                len(deleted),
                plan.left_alone,
            )
            self.on_run(done, (finished - started).total_seconds())
            return done

    async def _fresh(
        self, chunk: Sequence[BatchAge], due: Callable[[BatchAge], bool]
    ) -> list[BatchAge]:
        """The batches of `chunk` that are still due by their stored documents and that the
        engine is not running (call under the engine's lock)."""
        fresh: list[BatchAge] = []
        for b in chunk:
            if self.is_active(b.batch_id):
                continue
            doc = await self.batches.find_batch(b.batch_id)
            if doc is not None and due(batch_age(doc)):
                fresh.append(batch_age(doc))
        return fresh

    async def _archive(
        self, tenant: str, run_id: str, policy: RetentionPolicy, chunk: Sequence[BatchAge]
    ) -> list[str]:
        async with self.engine_lock:
            if not self.fence():
                raise LeadershipLost("not archiving without the lease")
            now = self.now()
            due = await self._fresh(chunk, lambda b: archive_due(policy, b, now))
            if not due:
                return []
            at = self.now()
            await self.publisher.publish(
                [
                    self._announce(
                        tenant,
                        b.batch_id,
                        "archived",
                        BatchArchived(
                            batch_id=b.batch_id,
                            run_id=run_id,
                            status=b.effective_status,
                            finished_at=b.ended_at,
                            archived_at=at,
                        ),
                    )
                    for b in due
                ]
            )
            await self.batches.save_batches(
                [
                    {
                        "_id": b.batch_id,
                        "status": "archived",
                        "archived_at": at,
                        "status_before_archive": b.effective_status,
                    }
                    for b in due
                ]
            )
        for b in due:  # archived now: nothing else touches them
            await self.batches.drop_job_documents(b.batch_id)
        return [b.batch_id for b in due]

    async def _purge(
        self, tenant: str, run_id: str, policy: RetentionPolicy, chunk: Sequence[BatchAge]
    ) -> list[str]:
        async with self.engine_lock:
            if not self.fence():
                raise LeadershipLost("not deleting without the lease")
            now = self.now()
            due = await self._fresh(chunk, lambda b: delete_due(policy, b, now))
            if not due:
                return []
            await self.publisher.publish(
                [
                    self._announce(
                        tenant,
                        b.batch_id,
                        "purged",
                        BatchPurged(batch_id=b.batch_id, run_id=run_id, archived_at=b.archived_at),
                    )
                    for b in due
                ]
            )
            for b in due:
                await self.batches.drop_job_documents(b.batch_id)
                await self.batches.delete_batch(b.batch_id)
        return [b.batch_id for b in due]

    async def _deleted(self, batch_id: str) -> None:
        """A user deleted the finished batch: its documents go, as for a purge. One the engine
        holds (a finished batch is not held) is left alone."""
        async with self.engine_lock:
            if not self.fence():
                raise LeadershipLost("not deleting without the lease")
            if self.is_active(batch_id):
                log.warning("batch %s was deleted while the engine holds it; kept", batch_id)
                return
            await self.batches.drop_job_documents(batch_id)
            await self.batches.delete_batch(batch_id)

    def _announce(self, tenant: str, batch_id: str, what: str, event: Event) -> Outgoing:
        env = envelope_for(
            event,
            producer=PRODUCER,
            tenant=tenant,
            event_id=deterministic_event_id(batch_id, "retention", what),
        )
        return Outgoing(self.topics.retention, batch_id, env)

    async def _change(
        self, tenant: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Stores what `change` makes of the tenant's policy document as it is now (None: no
        change), one change at a time; returns what was stored."""
        async with self.policy_lock:
            doc = change(self.tenants.get(tenant))
            if doc is not None:
                await self._save(doc)
            return doc

    async def _save(self, doc: dict[str, Any]) -> None:
        if not self.fence():
            raise LeadershipLost("not writing a retention policy without the lease")
        await self.policies.save_policy(doc)
        self.tenants[doc["_id"]] = doc


def chunks(items: Sequence[BatchAge], size: int) -> Iterator[Sequence[BatchAge]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
