"""Backups of what jobs change, shared by the executors (which write them) and the rollback
service (which validates and restores them). Collection `backups`.

A record's `_id` is the job id (`{batch_id}.{index}`) for a job's own backup, or
`{batch_id}.manual` for a backup of the batch's whole scope taken on request before start; so
a batch's backups are one `_id` range. The snapshot is stored as MongoDB Extended JSON text
(`data`), which keeps dates and ids exactly, with the SHA-256 of that text (`checksum`); a
record whose text no longer matches its checksum is corrupt and is never restored.

The first backup of a job wins: a later attempt of the same job finds the data already changed
by the earlier attempt, so only the first snapshot is the state before the job."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.store import Document

MANUAL_SUFFIX = "manual"
BATCH_READ = 20  # backups per read when going through a batch's (each may be large)
_DECODE = CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=UTC)


def encode_snapshot(snapshot: dict[str, Any]) -> tuple[str, str]:
    """(Extended JSON text, its SHA-256 hex digest)."""
    text = json_util.dumps(snapshot, json_options=CANONICAL_JSON_OPTIONS, sort_keys=False)
    return text, checksum_of(text)


def digest_of(value: Any) -> str:
    """A SHA-256 digest of a JSON-able (or stored) value, the same for equal values whatever
    their keys' order: what `JobType.state_of` gives per key."""
    text = json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS, sort_keys=True)
    return checksum_of(text)


def checksum_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def decode_snapshot(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json_util.loads(text, json_options=_DECODE)
    return data


def manual_backup_id(batch_id: str) -> str:
    return f"{batch_id}.{MANUAL_SUFFIX}"


def batch_range(batch_id: str) -> dict[str, Any]:
    """The `_id` filter matching every backup of the batch (`.` + 1 is `/`)."""
    return {"_id": {"$gt": f"{batch_id}.", "$lt": f"{batch_id}/"}}


class MongoBackups:
    """Backups in the store. Writes are `_id`-keyed single-document operations."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["backups"]

    async def put(
        self,
        backup_id: str,
        *,
        batch_id: str,
        job_type: str,
        snapshot: dict[str, Any],
        job_id: str | None,
        item: dict[str, Any] | None,
        attempt: int,
        created_at: datetime,
    ) -> tuple[Document, bool]:
        """Stores the backup unless one exists; returns the stored record and whether it is new."""
        text, checksum = encode_snapshot(snapshot)
        doc: Document = {
            "_id": backup_id,
            "batch_id": batch_id,
            "job_id": job_id,
            "job_type": job_type,
            "item": item,
            "attempt": attempt,
            "data": text,
            "checksum": checksum,
            "size_bytes": len(text.encode()),
            "created_at": created_at,
            "completed_at": None,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.collection.find_one({"_id": backup_id})
            if existing is not None:
                return existing, False
            raise
        return doc, True

    async def get(self, backup_id: str) -> Document | None:
        return await self.collection.find_one({"_id": backup_id})

    async def mark_completed(
        self, backup_id: str, at: datetime, after: dict[str, str] | None = None
    ) -> None:
        """Records that the job whose backup this is completed (its change is in place), and
        the digests of the state it left (`JobType.state_of`), if its job type gives them."""
        fields: dict[str, Any] = {"completed_at": at}
        if after is not None:
            fields["after"] = after
        await self.collection.update_one({"_id": backup_id}, {"$set": fields})

    async def of_batch(self, batch_id: str) -> AsyncIterator[Document]:
        """Every job backup of the batch, read a few at a time: a batch's backups together
        can be larger than a service's memory."""
        async for doc in self.collection.find(batch_range(batch_id), batch_size=BATCH_READ):
            yield doc

    async def assign(self, backup_id: str, batch_id: str) -> None:
        """Names the batch a backup taken before the batch existed belongs to."""
        await self.collection.update_one({"_id": backup_id}, {"$set": {"batch_id": batch_id}})

    async def discard(self, backup_id: str) -> None:
        """Removes a backup taken for a batch that was then not made (no batch names it)."""
        await self.collection.delete_one({"_id": backup_id, "batch_id": ""})
