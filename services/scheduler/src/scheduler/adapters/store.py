"""The scheduler's authoritative state in the store: batches, item chunks and job states.

Collections (the scheduler alone writes them): `sched_batches` (one document per batch),
`sched_chunks` (the items, written once), `sched_jobs` (job state changes, appended: one
document per batch and flush). Every write is keyed by `_id` and idempotent: inserts ignore
duplicates, job writes set fields.

Why job changes are appended rather than set in place: an update rewrites the whole document
(a bucket of 1,000 job states is ~130 KB), and an unpatched FerretDB v1 over SQLite also scans
the collection for it; an insert costs its own size. Appending made a 3,000-job run 2–4 times
faster (docs/performance.md, "The store's updates scan"). The changes of a batch are read back
only on recovery and retries, merged in the order they were written. A document's changes are
one binary (`changes`, compressed BSON: `servicekit.blobs`): the store converts each field of
a document it stores, so one value for a flush's job changes costs it a fraction of the same
as nested documents (docs/performance.md, "Job views and job state changes in one binary
field"); documents written before hold them nested, and read back the same."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.blobs import pack_document, unpack_document
from servicekit.buckets import Buckets
from servicekit.store import Document

LEGACY_BUCKETS = Buckets()  # 1,000 jobs per bucket
ACTIVE = ["draft", "uploading", "queued", "running", "paused", "retrying"]


class SchedulerStore(Protocol):
    async def setup(self) -> None: ...
    async def insert_batch(self, doc: Document) -> bool:
        """False if the batch was already there."""

    async def save_batches(self, docs: Sequence[Document]) -> None:
        """Sets the given fields of each batch (`_id` names it); where several documents name
        one batch, as if set in their order."""

    async def find_batch(self, batch_id: str) -> Document | None: ...
    async def active_batches(self) -> list[Document]: ...
    async def insert_chunk(
        self, batch_id: str, chunk: int, first_index: int, items: list[dict[str, Any]]
    ) -> bool: ...
    async def chunk_items(self, batch_id: str, chunk: int) -> list[dict[str, Any]]: ...
    async def chunk_layout(self, batch_id: str) -> list[tuple[int, int, int]]:
        """(chunk, first_index, count) of every stored chunk."""

    async def write_jobs(self, batch_id: str, changes: dict[int, dict[str, Any]]) -> None:
        """Sets fields of job states by job index."""

    async def job_states(self, batch_id: str) -> dict[int, dict[str, Any]]:
        """Every recorded job state of a batch, by job index."""

    async def tenant_batches(self, tenant: str) -> list[Document]:
        """The tenant's batch documents, with the fields retention needs."""

    async def drop_job_documents(self, batch_id: str) -> None:
        """Removes the batch's item chunks and job states (idempotent)."""

    async def delete_batch(self, batch_id: str) -> None:
        """Removes the batch's document (idempotent)."""


class MongoSchedulerStore:
    def __init__(self, db: AsyncDatabase[Document], epoch: Callable[[], int] = lambda: 0) -> None:
        self.batches = db["sched_batches"]
        self.chunks = db["sched_chunks"]
        self.jobs = db["sched_jobs"]
        # Orders job changes across schedulers: the leader's fencing token, which grows with
        # every change of leader; within one leader, a stamp that grows with every write.
        self.epoch = epoch
        self._stamp = 0

    async def setup(self) -> None:
        await self.jobs.create_index([("batch_id", ASCENDING)])
        await self.chunks.create_index([("batch_id", ASCENDING)])

    async def insert_batch(self, doc: Document) -> bool:
        try:
            await self.batches.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def save_batches(self, docs: Sequence[Document]) -> None:
        # One update per batch (multi-statement updates deadlocked FerretDB v1 before the dev
        # stack's patch: docs/architecture.md, "The store"), all at once;
        # several documents of one batch are merged first, later fields winning, as they
        # would if written one after another.
        merged: dict[str, Document] = {}
        for d in docs:
            merged.setdefault(d["_id"], {}).update(d)
        await asyncio.gather(
            *(
                self.batches.update_one(
                    {"_id": batch_id}, {"$set": {k: v for k, v in d.items() if k != "_id"}}
                )
                for batch_id, d in merged.items()
            )
        )

    async def find_batch(self, batch_id: str) -> Document | None:
        return await self.batches.find_one({"_id": batch_id})

    async def active_batches(self) -> list[Document]:
        return [d async for d in self.batches.find({"status": {"$in": ACTIVE}})]

    async def insert_chunk(
        self, batch_id: str, chunk: int, first_index: int, items: list[dict[str, Any]]
    ) -> bool:
        doc = {
            "_id": f"{batch_id}:{chunk}",
            "batch_id": batch_id,
            "chunk": chunk,
            "first_index": first_index,
            "count": len(items),
            "items": items,
        }
        try:
            await self.chunks.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def chunk_items(self, batch_id: str, chunk: int) -> list[dict[str, Any]]:
        doc = await self.chunks.find_one({"_id": f"{batch_id}:{chunk}"}, {"items": 1})
        if doc is None:
            raise LookupError(f"chunk {chunk} of batch {batch_id} is missing")
        items: list[dict[str, Any]] = doc["items"]
        return items

    async def chunk_layout(self, batch_id: str) -> list[tuple[int, int, int]]:
        cursor = self.chunks.find(
            {"batch_id": batch_id}, {"chunk": 1, "first_index": 1, "count": 1}
        )
        return [(d["chunk"], d["first_index"], d["count"]) async for d in cursor]

    async def write_jobs(self, batch_id: str, changes: dict[int, dict[str, Any]]) -> None:
        if not changes:
            return
        self._stamp = max(self._stamp + 1, time.time_ns())
        epoch = self.epoch()
        doc = {
            "_id": f"{batch_id}:{epoch}:{self._stamp}",
            "batch_id": batch_id,
            "order": [epoch, self._stamp],
            "changes": pack_document({str(i): fields for i, fields in changes.items()}),
        }
        # a retried insert that had reached the store holds the same changes
        with contextlib.suppress(DuplicateKeyError):
            await self.jobs.insert_one(doc)

    async def job_states(self, batch_id: str) -> dict[int, dict[str, Any]]:
        states: dict[int, dict[str, Any]] = {}
        appended: list[Document] = []
        async for doc in self.jobs.find({"batch_id": batch_id}):
            if "changes" in doc:
                appended.append(doc)
                continue
            # a bucket of job states, the layout before changes were appended
            for key, state in (doc.get("jobs") or {}).items():
                states[LEGACY_BUCKETS.index_of(doc["bucket"], key)] = dict(state)
        for doc in sorted(appended, key=lambda d: tuple(d["order"])):
            changes = doc["changes"]
            if not isinstance(changes, dict):  # one binary; nested documents before
                changes = unpack_document(changes)
            for index, fields in changes.items():
                states.setdefault(int(index), {}).update(fields)
        return states

    async def tenant_batches(self, tenant: str) -> list[Document]:
        fields = (
            "status",
            "finished_at",
            "archived_at",
            "rollback_requested_at",
            "rollback_finished_at",
            "rollback_outcome",
        )
        cursor = self.batches.find({"tenant": tenant}, dict.fromkeys(fields, 1))
        return [d async for d in cursor]

    async def drop_job_documents(self, batch_id: str) -> None:
        # One single-statement delete per collection (not a multi-statement bulk write).
        await self.jobs.delete_many({"batch_id": batch_id})
        await self.chunks.delete_many({"batch_id": batch_id})

    async def delete_batch(self, batch_id: str) -> None:
        await self.batches.delete_one({"_id": batch_id})


class MongoRetentionStore:
    """`sched_retention`: one document per tenant with its policy (`revision`), when the
    periodic run last started (`last_run_at`, so a restart or a new leader keeps the period)
    and the ids of recent manual runs (so a redelivered request runs once)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.policies = db["sched_retention"]

    async def all_policies(self) -> list[Document]:
        return [d async for d in self.policies.find({})]

    async def save_policy(self, doc: Document) -> None:
        await self.policies.replace_one({"_id": doc["_id"]}, doc, upsert=True)


class MongoScheduleStore:
    """`sched_schedules`: the scheduler's copy of every schedule and when it is next due.
    Few documents; read whole at start, written one by one by `_id`."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.schedules = db["sched_schedules"]

    async def all_schedules(self) -> list[Document]:
        return [d async for d in self.schedules.find({"deleted": {"$ne": True}})]

    async def save_schedule(self, doc: Document) -> None:
        await self.schedules.replace_one({"_id": doc["_id"]}, doc, upsert=True)
