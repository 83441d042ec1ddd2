"""The reporter's read models in the store.

`batch_views`: one document per batch. `job_views`: job views in buckets (of 100 jobs, or the
size recorded in the batch view: `servicekit.buckets`),
`{_id: "<batch>:<bucket>", batch_id, tenant, bucket, views: <binary>}`, the binary holding the
bucket's views (`{j<k>: view}`, each packed: `servicekit.jobviews`) as compressed BSON, so
each write sets the whole bucket: this store keeps the buckets it touches (full views to
fold, packed ones to write) and unpacks what it reads, so the projection folds full views.
Guards are applied here, in memory, against the stored documents: every write is one
`_id`-keyed update (FerretDB v1 scans on other filters, and multi-statement updates deadlocked
it before the dev stack's patch: docs/architecture.md, "The store").
One reporter instance owns the read models (see docs/architecture.md)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from contracts.envelope import Envelope
from contracts.events import BatchCreated, BatchSnapshot, Event, JobProgress, RollbackProgress
from contracts.tolerant import validate_tolerantly
from contracts.vocabulary import Webhook
from reporter.adapters.webhooks import DELIVERIES
from reporter.domain.projection import (
    BATCH_INITIAL,
    CHECK_EVENTS,
    JOB_EVENTS,
    ROLLBACK_EVENTS,
    Operators,
    batch_dynamic,
    batch_static,
    check_operators,
    fold_compensation,
    fold_job,
    fold_progress,
    is_check,
    log_entry,
    merge_operators,
    rollback_operators,
)
from servicekit.buckets import SIZE_FIELD, Buckets, bucket_id, view_buckets
from servicekit.jobviews import (
    BUCKET_PROJECTION,
    LEGACY_FIELD,
    VIEWS_FIELD,
    encode_views,
    pack,
    stored_views,
    unpack,
)
from servicekit.store import Document

BATCH_VIEWS = "batch_views"
JOB_VIEWS = "job_views"
BATCH_LOGS = "batch_logs"
CHECK_VIEWS = "rollback_check_views"


@dataclass
class _Bucket:
    """A job view bucket as stored: its full views (what the projection folds) and the same
    views packed (what is written)."""

    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    nested: bool = False  # some views still stored as nested documents under `jobs`


class MongoProjectionStore:
    def __init__(self, db: AsyncDatabase[Document], cached_buckets: int = 64) -> None:
        self.views = db[BATCH_VIEWS]
        self.jobs = db[JOB_VIEWS]
        self.logs = db[BATCH_LOGS]
        self.checks = db[CHECK_VIEWS]
        self.deliveries = db[DELIVERIES]  # the webhook adapter's; dropped with the batch
        self._seq: dict[str, int] = {}
        self._layouts: dict[str, Buckets] = {}
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._cached_buckets = cached_buckets

    async def setup(self) -> None:
        await self.views.create_index([("tenant", ASCENDING), ("created_at", DESCENDING)])
        await self.jobs.create_index([("batch_id", ASCENDING)])

    async def apply(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Projects a batch of events with one write per touched document."""
        static: dict[str, dict[str, Any]] = defaultdict(dict)
        dynamic: dict[str, dict[str, Any]] = {}
        jobs: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        tenants: dict[str, str] = {}
        logs: dict[str, dict[str, Any]] = defaultdict(dict)
        rollbacks: dict[str, Operators] = defaultdict(dict)
        checks: dict[str, Operators] = defaultdict(dict)  # dry runs, by rollback id
        for env, event in items:
            entry = log_entry(env, event)
            if entry is not None:
                batch_id = event.batch_id  # type: ignore[attr-defined]
                logs[batch_id][f"events.{env.event_id}"] = entry
                logs[batch_id]["tenant"] = env.tenant
            if isinstance(event, BatchCreated):
                static[event.batch_id] |= batch_static(env, event)
            elif isinstance(event, BatchSnapshot):
                known = dynamic.get(event.batch_id, {}).get("seq", -1)
                if env.seq > known:
                    dynamic[event.batch_id] = batch_dynamic(env, event)
            if isinstance(event, CHECK_EVENTS) and is_check(event):
                merge_operators(checks[event.rollback_id], check_operators(env, event))
            elif isinstance(event, ROLLBACK_EVENTS):
                operators = rollback_operators(env, event)
                if operators:
                    merge_operators(rollbacks[event.batch_id], operators)
            if isinstance(event, (*JOB_EVENTS, RollbackProgress, JobProgress)):
                doc_id, key = await self._slot(event.batch_id, event.job_id)
                view = jobs.get(doc_id, {}).get(key) or (await self._bucket(doc_id)).views.get(key)
                if isinstance(event, RollbackProgress):
                    view = fold_compensation(view, env, event)
                elif isinstance(event, JobProgress):
                    view = fold_progress(view, env, event)
                else:
                    view = fold_job(view, env, event)
                if view is not None:
                    jobs[doc_id][key] = view
                    tenants[doc_id] = env.tenant
        for batch_id in static.keys() | dynamic.keys() | rollbacks.keys():
            await self._write_batch(
                batch_id, static.get(batch_id, {}), dynamic.get(batch_id), rollbacks.get(batch_id)
            )
        for doc_id, views in jobs.items():
            await self._write_bucket(doc_id, tenants[doc_id], views)
        for rollback_id, operators in checks.items():
            await self.checks.update_one({"_id": rollback_id}, operators, upsert=True)
        for batch_id, sets in logs.items():
            # keyed by event id: a replayed event sets the same entry again
            await self.logs.update_one({"_id": batch_id}, {"$set": sets}, upsert=True)

    async def _write_batch(
        self,
        batch_id: str,
        static: dict[str, Any],
        dynamic: dict[str, Any] | None,
        operators: Operators | None = None,
    ) -> None:
        if batch_id not in self._seq:
            doc = await self.views.find_one({"_id": batch_id}, {"seq": 1})
            self._seq[batch_id] = doc["seq"] if doc else -1
        sets = dict(static)
        if dynamic is not None and dynamic["seq"] > self._seq[batch_id]:
            sets |= dynamic
        update: dict[str, Any] = {op: dict(fields) for op, fields in (operators or {}).items()}
        if sets:
            update["$set"] = {**update.get("$set", {}), **sets}
        on_insert = {k: v for k, v in BATCH_INITIAL.items() if k not in sets}
        if on_insert:
            update["$setOnInsert"] = on_insert
        await self.views.update_one({"_id": batch_id}, update, upsert=True)
        self._seq[batch_id] = max(self._seq[batch_id], sets.get("seq", 0))
        if len(self._seq) > 100_000:
            self._seq.clear()

    async def _slot(self, batch_id: str, job_id: str) -> tuple[str, str]:
        """The bucket document and the key in it of a job's view."""
        bucket, key = (await self._layout(batch_id)).of(int(job_id.rsplit(".", 1)[1]))
        return bucket_id(batch_id, bucket), key

    async def _layout(self, batch_id: str) -> Buckets:
        """The batch's job view layout, recorded in its view; a batch whose job events come
        before its view is created gets the view now, with today's layout."""
        layout = self._layouts.get(batch_id)
        if layout is not None:
            return layout
        doc = await self.views.find_one({"_id": batch_id}, {SIZE_FIELD: 1})
        if doc is None:
            await self.views.update_one(
                {"_id": batch_id}, {"$setOnInsert": BATCH_INITIAL}, upsert=True
            )
        layout = view_buckets(doc)
        if len(self._layouts) > 100_000:
            self._layouts.clear()
        self._layouts[batch_id] = layout
        return layout

    async def webhooks_of(self, batch_id: str) -> tuple[list[Webhook], str] | None:
        """The batch's webhooks and name, from its view; None before its creation is
        projected."""
        doc = await self.views.find_one({"_id": batch_id}, {"config": 1, "name": 1})
        if doc is None or "config" not in doc:
            return None
        hooks = (doc["config"] or {}).get("notifications") or []
        return [validate_tolerantly(Webhook, h) for h in hooks], str(doc.get("name") or "")

    async def _bucket(self, doc_id: str) -> _Bucket:
        """The bucket as stored; cached."""
        cached = self._buckets.get(doc_id)
        if cached is not None:
            self._buckets.move_to_end(doc_id)
            return cached
        doc = await self.jobs.find_one({"_id": doc_id}, BUCKET_PROJECTION)
        batch_id, number = doc_id.rsplit(":", 1)
        layout = await self._layout(batch_id)
        stored = stored_views(doc)
        bucket = _Bucket(
            views={
                key: unpack(view, batch_id, layout.index_of(int(number), key))
                for key, view in stored.items()
            },
            stored=stored,
            nested=bool(doc and doc.get(LEGACY_FIELD)),
        )
        self._buckets[doc_id] = bucket
        while len(self._buckets) > self._cached_buckets:
            self._buckets.popitem(last=False)
        return bucket

    async def _write_bucket(self, doc_id: str, tenant: str, views: dict[str, Any]) -> None:
        """Writes the bucket with `views` changed; the cache takes them once stored."""
        bucket = await self._bucket(doc_id)
        if bucket.nested:  # written by an older reporter: every view packed, into the binary
            stored = {key: pack(view) for key, view in (bucket.views | views).items()}
        else:
            stored = bucket.stored | {key: pack(view) for key, view in views.items()}
        batch_id, number = doc_id.rsplit(":", 1)
        sets = {"batch_id": batch_id, "tenant": tenant, "bucket": int(number)}
        update: dict[str, Any] = {"$set": sets | {VIEWS_FIELD: encode_views(stored)}}
        if bucket.nested:
            update["$unset"] = {LEGACY_FIELD: ""}
        await self.jobs.update_one({"_id": doc_id}, update, upsert=True)
        bucket.stored = stored
        bucket.views |= views
        bucket.nested = False

    async def drop_job_views(self, batch_id: str) -> None:
        """Removes the batch's job views (retention archived it); its batch view stays."""
        await self.jobs.delete_many({"batch_id": batch_id})  # one statement, not a bulk write
        for doc_id in [d for d in self._buckets if d.rsplit(":", 1)[0] == batch_id]:
            del self._buckets[doc_id]

    async def drop_batch(self, batch_id: str) -> None:
        """Removes every read model of the batch (retention deleted it): views, event log,
        rollback checks and webhook deliveries."""
        await self.drop_job_views(batch_id)
        await self.views.delete_one({"_id": batch_id})
        await self.logs.delete_one({"_id": batch_id})
        await self.deliveries.delete_many({"batch_id": batch_id})
        await self.checks.delete_many({"batch_id": batch_id})
        self._seq.pop(batch_id, None)
        self._layouts.pop(batch_id, None)
