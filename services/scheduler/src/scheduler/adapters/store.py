"""The scheduler's authoritative state in the store: batches, item chunks and job attempts.

Collections (the scheduler alone writes them): `sched_batches`, `sched_chunks`, `sched_jobs`.
Every write is idempotent: inserts ignore duplicates, job updates are guarded by attempt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from servicekit.store import Document


class SchedulerStore(Protocol):
    async def setup(self) -> None: ...
    async def insert_batch(self, doc: Document) -> bool:
        """False if the batch was already there."""

    async def save_batches(self, docs: Sequence[Document]) -> None:
        """Sets the given fields of each batch (`_id` names it)."""

    async def insert_chunk(
        self, batch_id: str, chunk: int, first_index: int, items: list[dict[str, Any]]
    ) -> bool: ...
    async def chunk_items(self, batch_id: str, chunk: int) -> list[dict[str, Any]]: ...
    async def chunk_layout(self, batch_id: str) -> list[tuple[int, int, int]]:
        """(chunk, first_index, count) of every stored chunk."""

    async def write_jobs(self, docs: Sequence[Document]) -> None:
        """Upserts job documents: `_id` is the job id, other keys are set."""

    async def active_batches(self) -> list[Document]: ...
    async def in_flight_jobs(self, batch_id: str) -> list[Document]: ...
    async def count_jobs(self, batch_id: str, status: str) -> int: ...
    async def max_job_index(self, batch_id: str) -> int: ...
    async def job_indexes(self, batch_id: str, status: str) -> list[tuple[int, int]]:
        """(index, attempt) of the batch's jobs in a status."""

    async def get_job(self, job_id: str) -> Document | None: ...
    async def find_batch(self, batch_id: str) -> Document | None: ...


class MongoSchedulerStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.batches = db["sched_batches"]
        self.chunks = db["sched_chunks"]
        self.jobs = db["sched_jobs"]

    async def setup(self) -> None:
        await self.jobs.create_index([("batch_id", ASCENDING), ("status", ASCENDING)])
        await self.jobs.create_index([("batch_id", ASCENDING), ("index", DESCENDING)])
        await self.chunks.create_index([("batch_id", ASCENDING)])
        await self.batches.create_index([("status", ASCENDING)])

    async def insert_batch(self, doc: Document) -> bool:
        try:
            await self.batches.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def save_batches(self, docs: Sequence[Document]) -> None:
        if not docs:
            return
        ops = [
            UpdateOne({"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}})
            for d in docs
        ]
        await self.batches.bulk_write(ops, ordered=False)

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

    async def write_jobs(self, docs: Sequence[Document]) -> None:
        if not docs:
            return
        ops = [
            UpdateOne(
                {"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}}, upsert=True
            )
            for d in docs
        ]
        try:
            await self.jobs.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:  # a concurrent upsert race on the same id is harmless
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def active_batches(self) -> list[Document]:
        cursor = self.batches.find(
            {"status": {"$in": ["draft", "uploading", "queued", "running", "paused", "retrying"]}}
        )
        return [d async for d in cursor]

    async def in_flight_jobs(self, batch_id: str) -> list[Document]:
        cursor = self.jobs.find(
            {"batch_id": batch_id, "status": {"$in": ["dispatched", "running", "retrying"]}}
        )
        return [d async for d in cursor]

    async def count_jobs(self, batch_id: str, status: str) -> int:
        return await self.jobs.count_documents({"batch_id": batch_id, "status": status})

    async def max_job_index(self, batch_id: str) -> int:
        doc = await self.jobs.find_one(
            {"batch_id": batch_id}, {"index": 1}, sort=[("index", DESCENDING)]
        )
        return -1 if doc is None else int(doc["index"])

    async def job_indexes(self, batch_id: str, status: str) -> list[tuple[int, int]]:
        cursor = self.jobs.find(
            {"batch_id": batch_id, "status": status}, {"index": 1, "attempt": 1}
        )
        return [(d["index"], d["attempt"]) async for d in cursor]

    async def get_job(self, job_id: str) -> Document | None:
        return await self.jobs.find_one({"_id": job_id})

    async def find_batch(self, batch_id: str) -> Document | None:
        return await self.batches.find_one({"_id": batch_id})
