"""Retention use cases of batch-api: a tenant's policy and runs (admin only), and what the
API does with its own data when the scheduler's leader archives or deletes a batch.

The policy is stored here (`retention_policies`, one document per tenant) and announced to
the scheduler as `RetentionPolicyChanged` (again at every start, so a lost announcement
heals; the scheduler keeps the highest revision). A run is asked for with
`RetentionRunRequested` and recorded in `retention_runs`; its outcome
(`RetentionRunCompleted`) completes the record and goes to the audit log.

`BatchArchived`: the API keeps the batch's report and analytics in its registry document,
marks it archived, drops its item chunks and its jobs' backups (an archived batch cannot be
rolled back), then announces `BatchArchiveRecorded`, after which the reporter drops the
per-job views (so the kept report was computed from them). `BatchPurged`: the API deletes the
batch, its items, its uploaded files and its backups. Both are idempotent."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from batch_api.adapters.audit import AuditLog
from batch_api.adapters.registry import BatchRegistry
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.lifecycle import status_of
from batch_api.domain.principal import Principal
from batch_api.handlers.batches import Loaded
from batch_api.handlers.lifecycle import require
from batch_api.handlers.reports import ReportService
from batch_api.retention_schemas import (
    RetentionPolicyBody,
    RetentionPolicyPublic,
    RetentionRun,
    RetentionRunBody,
)
from contracts.codec import envelope_for
from contracts.envelope import Envelope, deterministic_event_id
from contracts.events import (
    BatchArchived,
    BatchArchiveRecorded,
    BatchPurged,
    Event,
    RetentionPolicyChanged,
    RetentionRunCompleted,
    RetentionRunRequested,
)
from contracts.topics import Topics
from servicekit.files import FileStore
from servicekit.publisher import EventPublisher, Outgoing
from servicekit.store import Document

PRODUCER = "batch-api"
POLICY_FIELDS = (
    "enabled",
    "archive_after_days",
    "failed_archive_after_days",
    "delete_archived_after_days",
)
AUDITED_IDS = 100
RUNS_LISTED = 50


@dataclass
class RetentionService:
    db: AsyncDatabase[Document]
    registry: BatchRegistry
    read_models: ReadModels
    reports: ReportService
    audit: AuditLog
    publisher: EventPublisher
    topics: Topics
    files: FileStore

    @property
    def policies(self) -> Any:
        return self.db["retention_policies"]

    @property
    def runs(self) -> Any:
        return self.db["retention_runs"]

    # ------------------------------------------------------------------ the policy
    async def policy(self, who: Principal) -> RetentionPolicyPublic:
        require(who, "admin")
        return _public_policy(await self.policies.find_one({"_id": who.tenant}))

    async def set_policy(self, body: RetentionPolicyBody, who: Principal) -> RetentionPolicyPublic:
        """Replaces the tenant's policy and tells the scheduler."""
        require(who, "admin")
        old = await self.policies.find_one({"_id": who.tenant})
        doc = {
            "_id": who.tenant,
            **body.model_dump(),
            "revision": int((old or {}).get("revision", 0)) + 1,
            "updated_at": datetime.now(UTC),
            "updated_by": who.user,
        }
        await self.policies.replace_one({"_id": who.tenant}, doc, upsert=True)
        await self._announce(doc)
        return _public_policy(doc)

    async def announce_all(self) -> None:
        """Announces every tenant's policy again (at start: heals a lost announcement)."""
        async for doc in self.policies.find({}):
            await self._announce(doc)

    async def _announce(self, doc: Document) -> None:
        event = RetentionPolicyChanged(
            **{k: doc.get(k) for k in POLICY_FIELDS}, revision=int(doc["revision"])
        )
        env = envelope_for(
            event,
            producer=PRODUCER,
            tenant=doc["_id"],
            event_id=deterministic_event_id("retention-policy", doc["_id"], str(doc["revision"])),
        )
        await self.publisher.publish([Outgoing(self.topics.retention, doc["_id"], env)])

    # ------------------------------------------------------------------ runs
    async def request_run(
        self, body: RetentionRunBody, who: Principal, wait_s: float
    ) -> RetentionRun:
        """Asks the scheduler's leader for a run now; waits up to `wait_s` for its outcome."""
        require(who, "admin")
        run_id = f"ret_{uuid.uuid4().hex[:20]}"
        doc = {
            "_id": run_id,
            "tenant": who.tenant,
            "status": "requested",
            "dry_run": body.dry_run,
            "trigger": "manual",
            "requested_by": who.user,
            "requested_at": datetime.now(UTC),
        }
        await self.runs.insert_one(doc)
        event = RetentionRunRequested(run_id=run_id, dry_run=body.dry_run, requested_by=who.user)
        env = envelope_for(
            event,
            producer=PRODUCER,
            tenant=who.tenant,
            event_id=deterministic_event_id("retention-run-request", run_id),
        )
        await self.publisher.publish([Outgoing(self.topics.retention, who.tenant, env)])
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            found = await self.runs.find_one({"_id": run_id})
            if found is not None and found.get("status") == "completed":
                return _public_run(found)
            await asyncio.sleep(0.2)
        return _public_run(doc)

    async def run(self, run_id: str, who: Principal) -> RetentionRun:
        require(who, "admin")
        doc = await self.runs.find_one({"_id": run_id})
        if doc is None or doc.get("tenant") != who.tenant:
            raise Problem(404, "Not found", f"no retention run {run_id}")
        return _public_run(doc)

    async def recent_runs(self, who: Principal) -> list[RetentionRun]:
        """The tenant's last runs, newest first (periodic and manual)."""
        require(who, "admin")
        cursor = (
            self.runs.find({"tenant": who.tenant})
            .sort("requested_at", DESCENDING)
            .limit(RUNS_LISTED)
        )
        return [_public_run(d) async for d in cursor]

    # ------------------------------------------------------------------ consuming
    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        for env, event in items:
            if isinstance(event, BatchArchived):
                await self._archived(env, event)
            elif isinstance(event, BatchPurged):
                await self._purged(env, event)
            elif isinstance(event, RetentionRunCompleted):
                await self._run_completed(env, event)

    async def _archived(self, env: Envelope, e: BatchArchived) -> None:
        doc = await self.registry.get(e.batch_id)
        if doc is None or doc["tenant"] != env.tenant:
            return
        if doc.get("jobs_dropped_at") is None:
            view = await self.read_models.batch_view(e.batch_id)
            found = Loaded(doc, view, status_of(doc, view))
            report = await self.reports.report(found)
            analytics = await self.reports.analytics(found)
            now = datetime.now(UTC)
            await self.registry.set(
                e.batch_id,
                {
                    "archived_at": doc.get("archived_at") or e.archived_at,
                    "archived_by": doc.get("archived_by") or "retention",
                    "retained_report": report.model_dump(mode="json"),
                    "retained_analytics": analytics.model_dump(mode="json"),
                    "jobs_dropped_at": now,
                },
            )
            await self.registry.drop_items(e.batch_id, int(doc.get("chunks") or 0))
        await self.registry.drop_backups(e.batch_id)
        recorded = BatchArchiveRecorded(batch_id=e.batch_id, run_id=e.run_id)
        out = envelope_for(
            recorded,
            producer=PRODUCER,
            tenant=env.tenant,
            event_id=deterministic_event_id(e.batch_id, "archive-recorded"),
        )
        await self.publisher.publish([Outgoing(self.topics.retention, e.batch_id, out)])

    async def _purged(self, env: Envelope, e: BatchPurged) -> None:
        doc = await self.registry.get(e.batch_id)
        if doc is None or doc["tenant"] != env.tenant:
            return
        # its uploaded files first, as a user's delete does: a failure leaves the batch to
        # find again
        await self.files.delete_batch(e.batch_id)
        await self.registry.delete(doc)

    async def _run_completed(self, env: Envelope, e: RetentionRunCompleted) -> None:
        known = await self.runs.find_one({"_id": e.run_id})
        if known is not None and known.get("status") == "completed":
            return  # a repeat
        fields = {
            "tenant": env.tenant,
            "status": "completed",
            **e.model_dump(exclude={"run_id"}),
        }
        if known is None:
            fields["requested_at"] = e.started_at
        # audit first: a crash in between audits a redelivered outcome again, never not at all
        await self.audit.record(
            {
                "at": e.finished_at,
                "tenant": env.tenant,
                "key_id": "",
                "user": e.requested_by or "scheduler",
                "role": "admin",
                "method": "POST",
                "path": f"/v1/retention/runs/{e.run_id}",
                "action": "retention.dry_run" if e.dry_run else "retention.run",
                "resource": e.run_id,
                "status": 200,
                "outcome": "ok",
                "detail": {
                    "trigger": e.trigger,
                    "dry_run": e.dry_run,
                    "archived": e.archived,
                    "deleted": e.deleted,
                    "archived_ids": e.archived_ids[:AUDITED_IDS],
                    "deleted_ids": e.deleted_ids[:AUDITED_IDS],
                    "skipped_non_terminal": e.skipped_non_terminal,
                },
            }
        )
        await self.runs.update_one({"_id": e.run_id}, {"$set": fields}, upsert=True)


def _public_policy(doc: Document | None) -> RetentionPolicyPublic:
    doc = doc or {}
    return RetentionPolicyPublic(
        **{k: doc.get(k) for k in POLICY_FIELDS if doc.get(k) is not None},
        revision=int(doc.get("revision", 0)),
        updated_at=doc.get("updated_at"),
        updated_by=doc.get("updated_by"),
    )


def _public_run(doc: Document) -> RetentionRun:
    return RetentionRun.model_validate(
        {"run_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    )
