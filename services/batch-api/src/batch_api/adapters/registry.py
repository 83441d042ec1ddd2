"""What the API owns about batches: the registry (tenant, owner, descriptive fields, the
phase before submission, archiving), the uploaded item chunks (the outbox for submission) and
idempotency keys.

Collections: `batches`, `batch_uploads`, `idempotency_keys`, `rollback_checks` (the dry runs
asked for; their outcome is the reporter's, `rollback_check_views`). A registry document holds
`phase` (`draft`, `uploading`, `submitted` or `cancelled` for a draft cancelled before
submission), `total`, `chunks` and `chunk_starts` (the first job index of every chunk, in
chunk order). A batch whose submission did not finish publishing (`submission: publishing`)
is published again from its stored chunks; events have deterministic ids, so consumers
recognise the repeats. Chunk documents are keyed `<batch id>:<chunk>` and read by `_id`
(the local store scans on any other filter).

Draft editing: removing an item records its offset in its chunk's `removed` list (a
tombstone; optimistic concurrency on the chunk's `rev`) after setting `edited` on the batch
(guarded by its phase). Submission seals every chunk of an edited batch (`sealed`: no
tombstone is accepted any more) and compacts it: removed items are dropped, `first_index`
is recomputed, so the submitted items are dense and in upload order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import bson
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.backups import batch_range
from servicekit.store import Document

P = ParamSpec("P")
R = TypeVar("R")


def _writes(
    method: Callable[Concatenate[BatchRegistry, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[BatchRegistry, P], Coroutine[Any, Any, R]]:
    """Marks a method that changes batch documents: it moves the registry's `version` on."""

    async def counted(self: BatchRegistry, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        finally:
            self.version += 1

    return counted


class BatchRegistry:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.batches = db["batches"]
        # Moves on after every change of a batch document by this process (read caches
        # compare it: see adapters/readcache.py).
        self.version = 0
        self.uploads = db["batch_uploads"]
        self.idempotency = db["idempotency_keys"]
        self.backups = db["backups"]
        self.checks = db["rollback_checks"]

    async def setup(self) -> None:
        await self.uploads.create_index([("batch_id", ASCENDING), ("chunk", ASCENDING)])
        await self.batches.create_index([("submission", ASCENDING)])

    @_writes
    async def insert(self, doc: Document) -> bool:
        """False if a batch with this id is already stored (a concurrent idempotent retry)."""
        try:
            await self.batches.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def as_stored(self, doc: Document) -> Document:
        """`doc` as a read from the store would return it (datetimes in UTC, to the
        millisecond), without the round trip."""
        return bson.decode(bson.encode(doc), codec_options=self.batches.codec_options)

    async def get(self, batch_id: str) -> Document | None:
        return await self.batches.find_one({"_id": batch_id})

    @_writes
    async def set(self, batch_id: str, fields: dict[str, Any]) -> None:
        await self.batches.update_one({"_id": batch_id}, {"$set": fields})

    @_writes
    async def set_if(self, batch_id: str, expected: dict[str, Any], fields: dict[str, Any]) -> bool:
        """Sets `fields` only if the document still matches `expected`; False otherwise
        (someone changed it in between)."""
        result = await self.batches.update_one({"_id": batch_id, **expected}, {"$set": fields})
        return result.matched_count == 1

    @_writes
    async def allocate_chunks(
        self, batch_id: str, phases: list[str], sizes: list[int]
    ) -> Document | None:
        """Reserves chunk numbers and job indexes for an upload of chunks of `sizes` items, if
        the batch is in one of `phases`; moves it to `uploading`. Returns the document after
        the change (None if the batch is not in those phases). Concurrent uploads get
        disjoint ranges: the counters change in one document update."""
        doc: Document | None = await self.batches.find_one_and_update(
            {"_id": batch_id, "phase": {"$in": phases}},
            {
                "$inc": {"total": sum(sizes), "chunks": len(sizes)},
                "$set": {"phase": "uploading"},
            },
            return_document=ReturnDocument.AFTER,
        )
        return doc

    @_writes
    async def record_chunk_starts(self, batch_id: str, starts: dict[int, int]) -> None:
        """Records the first index of allocated chunks (`chunk → first index`)."""
        await self.batches.update_one(
            {"_id": batch_id},
            {"$set": {f"chunk_first.{chunk}": first for chunk, first in starts.items()}},
        )

    async def drop_items(self, batch_id: str, chunks: int) -> None:
        """Removes a batch's item chunks (kept: its registry document)."""
        for chunk in range(chunks):
            await self.uploads.delete_one({"_id": f"{batch_id}:{chunk}"})

    async def drop_backups(self, batch_id: str) -> None:
        """Removes the backups of the batch's jobs (written by the executors) and its rollback
        checks: once a batch is archived or deleted it cannot be rolled back, and they would
        only fill the store."""
        await self.backups.delete_many(batch_range(batch_id))
        await self.checks.delete_many({"batch_id": batch_id})

    async def add_check(self, doc: Document) -> None:
        """Records a rollback check asked for (a dry run the rollback service plans)."""
        await self.checks.insert_one(doc)

    async def check(self, check_id: str) -> Document | None:
        return await self.checks.find_one({"_id": check_id})

    @_writes
    async def delete(self, doc: Document) -> None:
        """Removes the batch `doc`, its item chunks (one `_id`-keyed delete each) and its
        backups. The Idempotency-Key that created it, if any, is kept as a tombstone: a
        request repeated with it is told the batch was deleted rather than making it again."""
        batch_id = doc["_id"]
        for chunk in range(int(doc.get("chunks") or 0)):
            await self.uploads.delete_one({"_id": f"{batch_id}:{chunk}"})
        await self.drop_backups(batch_id)
        if doc.get("idempotency_key"):
            await self.idempotency.update_one(
                {"_id": doc["idempotency_key"], "batch_id": batch_id},
                {"$set": {"deleted_at": datetime.now(UTC)}},
            )
        await self.batches.delete_one({"_id": batch_id})

    async def find(
        self, query: dict[str, Any], limit: int, before_id: str | None
    ) -> list[Document]:
        """Registry documents matching `query`, newest first (ids are time-ordered)."""
        if before_id is not None:
            query = {**query, "_id": {**query.get("_id", {}), "$lt": before_id}}
        cursor = self.batches.find(query).sort("_id", DESCENDING).limit(limit)
        return [d async for d in cursor]

    def scan(self, query: dict[str, Any], batch_size: int) -> AsyncIterator[Document]:
        """Every registry document matching `query`, newest first, read `batch_size` at a time
        as the caller goes (so one that stops early stops the store's reading too)."""
        cursor: AsyncIterator[Document] = (
            self.batches.find(query).sort("_id", DESCENDING).batch_size(batch_size)
        )
        return cursor

    async def put_chunk(
        self, batch_id: str, chunk: int, first_index: int, items: list[dict[str, Any]]
    ) -> None:
        doc = {
            "_id": f"{batch_id}:{chunk}",
            "batch_id": batch_id,
            "chunk": chunk,
            "first_index": first_index,
            "items": items,
        }
        with contextlib.suppress(DuplicateKeyError):
            await self.uploads.insert_one(doc)

    @_writes
    async def mark_edited(self, batch_id: str, phases: list[str]) -> bool:
        """Records that items of the batch are being removed, if it is in one of `phases`
        (False otherwise). Submission compacts the chunks of an edited batch."""
        result = await self.batches.update_one(
            {"_id": batch_id, "phase": {"$in": phases}}, {"$set": {"edited": True}}
        )
        return result.matched_count == 1

    async def remove_items(
        self, batch_id: str, chunk: int, offsets: AbstractSet[int]
    ) -> int | None:
        """Tombstones the items at `offsets` of a chunk; returns how many were not removed
        before, or None if the chunk is sealed (the batch was submitted). Concurrent removals
        from one chunk retry on its `rev`."""
        chunk_id = f"{batch_id}:{chunk}"
        while True:
            doc = await self.uploads.find_one({"_id": chunk_id}, {"items": 0})
            if doc is None:
                return 0
            if doc.get("sealed"):
                return None
            before = {int(o) for o in doc.get("removed") or []}
            new = offsets - before
            if not new:
                return 0
            rev = doc.get("rev")
            guard: dict[str, Any] = {"$exists": False} if rev is None else rev
            result = await self.uploads.update_one(
                {"_id": chunk_id, "rev": guard, "sealed": {"$ne": True}},
                {"$set": {"removed": sorted(before | new), "rev": int(rev or 0) + 1}},
            )
            if result.matched_count == 1:
                return len(new)

    @_writes
    async def add_to_total(self, batch_id: str, phases: list[str], delta: int) -> None:
        """Changes the item count of a batch still in one of `phases` (once submitted, the
        compaction sets it)."""
        await self.batches.update_one(
            {"_id": batch_id, "phase": {"$in": phases}}, {"$inc": {"total": delta}}
        )

    async def seal_chunk(self, batch_id: str, chunk: int) -> Document | None:
        """Seals a chunk against further removals; returns it as sealed."""
        doc: Document | None = await self.uploads.find_one_and_update(
            {"_id": f"{batch_id}:{chunk}"},
            {"$set": {"sealed": True}},
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def rewrite_chunk(
        self, batch_id: str, chunk: int, items: list[dict[str, Any]], first_index: int
    ) -> None:
        """Replaces a sealed chunk's items by its live ones, at `first_index`."""
        await self.uploads.update_one(
            {"_id": f"{batch_id}:{chunk}"},
            {"$set": {"items": items, "removed": [], "first_index": first_index}},
        )

    async def chunk(self, batch_id: str, chunk: int) -> Document | None:
        return await self.uploads.find_one({"_id": f"{batch_id}:{chunk}"})

    async def chunks(self, batch_id: str, count: int | None = None) -> AsyncIterator[Document]:
        """The batch's chunks in order; by `_id` when their `count` is known."""
        if count is None:
            cursor = self.uploads.find({"batch_id": batch_id}).sort("chunk", ASCENDING)
            async for doc in cursor:
                yield doc
            return
        for number in range(count):
            found = await self.chunk(batch_id, number)
            if found is not None:
                yield found

    async def missing_chunks(self, batch_id: str, count: int) -> int:
        """How many of chunks 0..count-1 are not stored (yet)."""
        ids = [f"{batch_id}:{c}" for c in range(count)]
        found = 0
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            found += len([d async for d in self.uploads.find({"_id": {"$in": part}}, {"_id": 1})])
        return count - found

    async def unfinished_submissions(self, older_than: datetime) -> list[str]:
        cursor = self.batches.find(
            {"submission": "publishing", "submitted_at": {"$lt": older_than}}, {"_id": 1}
        )
        return [d["_id"] async for d in cursor]

    async def claim_idempotency_key(
        self, tenant: str, key: str, body_hash: str, batch_id: str, at: datetime
    ) -> Document | None:
        """Records the key; returns the earlier record if the key was already used."""
        doc = {
            "_id": f"{tenant}:{key}",
            "body_hash": body_hash,
            "batch_id": batch_id,
            "created_at": at,
        }
        try:
            await self.idempotency.insert_one(doc)
        except DuplicateKeyError:
            return await self.idempotency.find_one({"_id": doc["_id"]})
        return None

    async def idempotency_record(self, tenant: str, key: str) -> Document | None:
        """What the key was claimed for (`body_hash`, `batch_id`, `deleted_at`), if it was."""
        return await self.idempotency.find_one({"_id": f"{tenant}:{key}"})

    async def batch_for_idempotency_key(self, tenant: str, key: str) -> str | None:
        """The batch an earlier request with this key made, if it was stored (and perhaps
        deleted since)."""
        claimed = await self.idempotency_record(tenant, key)
        if claimed is None:
            return None
        if claimed.get("deleted_at") is None and await self.get(claimed["batch_id"]) is None:
            return None
        return str(claimed["batch_id"])

    async def release_idempotency_key(self, tenant: str, key: str) -> None:
        """Forgets a claimed key whose request failed, so a retry can use it."""
        await self.idempotency.delete_one({"_id": f"{tenant}:{key}"})

    async def record_idempotent_result(self, tenant: str, key: str, result: Document) -> None:
        await self.idempotency.update_one({"_id": f"{tenant}:{key}"}, {"$set": {"result": result}})


def live_items(chunk: Document) -> list[tuple[int, dict[str, Any]]]:
    """(offset, item) of the items of a chunk document that were not removed."""
    removed = {int(o) for o in chunk.get("removed") or []}
    return [(i, item) for i, item in enumerate(chunk.get("items") or []) if i not in removed]
