"""Files uploaded into batches, kept in the store (not on any service's disk).

Layout (chosen by measurement on FerretDB v1 with its SQLite handler, 2 cores;
`bench/file_store_layouts.py` repeats it): every lookup there scans its collection, `_id`
filters included (`explain` shows `SCAN`), and the scan cost grows with the bytes the
collection holds. With 200 files of 100 KiB stored, GridFS (one `fs.chunks` collection,
chunks found by `files_id`) took 0.9–1.1 s to read any one file; 255 KiB chunks under `_id`
keys in one shared collection took 7 ms for the first file stored and 88 ms for the 200th
(1.0 s for the 1,000th of 1,000 files of 255 KiB); a collection per file took 5–6 ms for
either, and 13–16 ms to create one and write it.

- `files`: one small document per file, `_id` = the file id: tenant, batch, name, media type,
  size, chunk count, `complete` (set once every chunk is written).
- `file_chunks.<file id>`: the file's bytes in chunks of `CHUNK_BYTES`, `_id` = chunk number.
  Chunks are written in order into a fresh collection, so the natural order is the chunk
  order; the reader checks that and falls back to `_id` lookups if a store returns them out
  of order (on MongoDB, where `_id` is indexed, that is cheap).

On MongoDB, where `_id` is indexed, one shared chunk collection would read as fast and keep the
number of collections down (each is files of its own there); the layout lives in this module
only, so a deployment on MongoDB with very many files can switch it here.

File ids are `<batch id>.f<16 random hex digits>`: the batch's files are one `_id` range, and
an id cannot be guessed from another."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.store import Document

CHUNK_BYTES = 255 * 1024
# chunks written per insert: bounds what one upload holds in memory at a time
CHUNKS_PER_WRITE = 4


def new_file_id(batch_id: str) -> str:
    return f"{batch_id}.f{os.urandom(8).hex()}"


def chunks_collection(file_id: str) -> str:
    return f"file_chunks.{file_id}"


class FileCorrupt(Exception):
    """A stored file's chunks do not add up to what its document says."""


@dataclass(frozen=True)
class StoredFile:
    """What the store knows about one file."""

    file_id: str
    tenant: str
    batch_id: str
    filename: str
    content_type: str | None
    size: int
    chunks: int
    complete: bool

    @classmethod
    def from_doc(cls, doc: Document) -> StoredFile:
        return cls(
            file_id=doc["_id"],
            tenant=doc.get("tenant", ""),
            batch_id=doc.get("batch_id", ""),
            filename=doc.get("filename", ""),
            content_type=doc.get("content_type"),
            size=int(doc.get("size") or 0),
            chunks=int(doc.get("chunks") or 0),
            complete=bool(doc.get("complete")),
        )


class FileStore:
    """Writes, reads and deletes uploaded files. Every call is a store round trip; errors of
    the store (`PyMongoError`) reach the caller."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.files = db["files"]

    async def put(
        self,
        file_id: str,
        source: BinaryIO,
        *,
        tenant: str,
        batch_id: str,
        filename: str,
        content_type: str | None,
    ) -> StoredFile:
        """Stores the bytes `source` reads, `CHUNKS_PER_WRITE` chunks at a time. The file's
        document is written first (`complete: False`) so a failure in between leaves
        something `delete` finds; it is marked complete last."""
        now = datetime.now(UTC)
        doc: Document = {
            "_id": file_id,
            "tenant": tenant,
            "batch_id": batch_id,
            "filename": filename,
            "content_type": content_type,
            "size": 0,
            "chunks": 0,
            "complete": False,
            "created_at": now,
        }
        await self.files.insert_one(doc)
        chunks = self.db[chunks_collection(file_id)]
        size, number, pending = 0, 0, []
        while True:
            data = source.read(CHUNK_BYTES)
            if data:
                pending.append({"_id": number, "data": Binary(data)})
                size += len(data)
                number += 1
            if pending and (not data or len(pending) >= CHUNKS_PER_WRITE):
                await chunks.insert_many(pending, ordered=True)
                pending = []
            if not data:
                break
        fields = {"size": size, "chunks": number, "complete": True}
        await self.files.update_one({"_id": file_id}, {"$set": fields})
        return StoredFile.from_doc({**doc, **fields})

    async def get(self, file_id: str) -> StoredFile | None:
        doc = await self.files.find_one({"_id": file_id})
        return None if doc is None else StoredFile.from_doc(doc)

    async def read(self, stored: StoredFile) -> AsyncIterator[bytes]:
        """The file's bytes, chunk by chunk (one chunk in memory at a time). Raises
        `FileCorrupt` if a chunk is missing or the sizes do not add up."""
        chunks = self.db[chunks_collection(stored.file_id)]
        expected, size = 0, 0
        async for doc in chunks.find({}, batch_size=2):
            if doc["_id"] != expected:
                break  # out of natural order: read the rest by `_id`
            size += len(doc["data"])
            expected += 1
            yield bytes(doc["data"])
        while expected < stored.chunks:
            found = await chunks.find_one({"_id": expected})
            if found is None:
                raise FileCorrupt(f"chunk {expected} of file {stored.file_id} is missing")
            size += len(found["data"])
            expected += 1
            yield bytes(found["data"])
        if expected != stored.chunks or size != stored.size:
            raise FileCorrupt(
                f"file {stored.file_id} holds {size} bytes in {expected} chunks; "
                f"{stored.size} bytes in {stored.chunks} chunks were stored"
            )

    async def delete(self, file_ids: Iterable[str]) -> int:
        """Deletes files and their chunks; ids not stored are skipped. Returns how many
        file documents were deleted."""
        deleted = 0
        for file_id in file_ids:
            await self.db.drop_collection(chunks_collection(file_id))
            result = await self.files.delete_one({"_id": file_id})
            deleted += result.deleted_count
        return deleted

    async def batch_file_ids(self, batch_id: str) -> list[str]:
        """Ids of every file uploaded into the batch (one `_id` range)."""
        query: dict[str, Any] = {"_id": {"$gt": f"{batch_id}.", "$lt": f"{batch_id}/"}}
        return [d["_id"] async for d in self.files.find(query, projection={"_id": 1})]

    async def delete_batch(self, batch_id: str) -> int:
        """Deletes every file of a batch; returns how many."""
        return await self.delete(await self.batch_file_ids(batch_id))
