"""What the rollback service reads and keeps in the store.

- `backups` (written by executors and the API): `servicekit.backups.MongoBackups`.
- `batch_views` and `job_views` (the reporter's read models): the batch's job type and
  parameters, and which jobs completed when. Job views are read by bucket `_id`.
- `rollbacks` (owned here): one document per rollback, its plan and each step's state, so a
  redelivered or interrupted rollback continues where it stopped; a plan of more than
  `INLINE_AT_MOST` jobs keeps its lists in part documents beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from rollback.domain.plan import BatchFacts
from servicekit.backups import MongoBackups
from servicekit.buckets import bucket_id, view_buckets
from servicekit.jobviews import BUCKET_PROJECTION, unpack_bucket
from servicekit.store import Document


class Backups(Protocol):
    async def get(self, backup_id: str) -> Document | None:
        """The backup record, or None."""

    def of_batch(self, batch_id: str) -> AsyncIterator[Document]:
        """Every job backup of the batch (ids `{batch_id}.…`), a few at a time."""


class Batches(Protocol):
    async def facts(self, batch_id: str) -> BatchFacts | None:
        """The batch's job type, params and completed jobs; None for an unknown batch."""


class Plans(Protocol):
    async def get(self, rollback_id: str) -> Document | None: ...

    async def create(self, doc: Document) -> Document:
        """Stores the rollback unless it exists; returns the stored one."""

    async def set(self, rollback_id: str, fields: dict[str, Any]) -> None: ...

    async def drop(self, rollback_id: str) -> None:
        """Removes one rollback's record (a dry run's, once its outcome is announced)."""

    async def drop_batch(self, batch_id: str) -> None:
        """Removes the records of the batch's rollbacks (the batch was deleted)."""


class ReadModelBatches:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.views = db["batch_views"]
        self.job_views = db["job_views"]

    async def facts(self, batch_id: str) -> BatchFacts | None:
        view = await self.views.find_one({"_id": batch_id})
        if view is None or "job_type" not in view:
            # no view, or one the reporter opened for job events that came before the batch's
            # creation was projected: the batch is not known yet (the request is retried)
            return None
        total = int((view.get("counts") or {}).get("total") or 0)
        completed: dict[str, datetime | None] = {}
        layout = view_buckets(view)
        for bucket in range(max(1, layout.count(total))):
            doc = await self.job_views.find_one(
                {"_id": bucket_id(batch_id, bucket)}, BUCKET_PROJECTION
            )
            for job in unpack_bucket(doc, batch_id, layout, bucket).values():
                if job.get("status") == "completed":
                    completed[job["job_id"]] = job.get("finished_at")
        return BatchFacts(
            batch_id=batch_id,
            job_type=view.get("job_type", ""),
            params=(view.get("config") or {}).get("params") or {},
            completed=completed,
        )


# A rollback's lists (`steps`, `refusals`: one entry per job) longer than `INLINE_AT_MOST`
# entries are kept in part documents of at most `PART_ENTRIES` each; `parts` in the
# rollback's document says how many. Its document is rewritten after every step (the store
# rewrites a whole document to `$set` one field), so it must not grow with the plan: with the
# steps inline, a 1,000-job rollback ran 14 steps/s, the step's cost growing with the plan
# (bench/rollback.py, docs/performance.md). A part may not pass the store's 16 MiB (a
# 20,000-step part is ~3.4 MiB).
INLINE_AT_MOST = 100
PART_ENTRIES = 20_000
LISTS = ("steps", "refusals")


class MongoPlans:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["rollbacks"]

    async def get(self, rollback_id: str) -> Document | None:
        doc = await self.collection.find_one({"_id": rollback_id})
        if doc is None:
            return None
        for name, count in (doc.get("parts") or {}).items():
            ids = [_part_id(rollback_id, name, n) for n in range(count)]
            found = {p["_id"]: p async for p in self.collection.find({"_id": {"$in": ids}})}
            doc[name] = [entry for part in ids for entry in found[part]["entries"]]
        return doc

    async def create(self, doc: Document) -> Document:
        """Stores a new rollback (a repeat leaves the first one); returns what is stored. Its
        long lists go first, in parts (written again by a repeat, before the document that
        names them exists)."""
        existing = await self.get(doc["_id"])
        if existing is not None:
            return existing
        head = dict(doc)
        parts: dict[str, int] = {}
        for name in LISTS:
            entries = doc.get(name) or []
            if len(entries) <= INLINE_AT_MOST:
                continue
            chunks = [entries[i : i + PART_ENTRIES] for i in range(0, len(entries), PART_ENTRIES)]
            for n, chunk in enumerate(chunks):
                part_id = _part_id(doc["_id"], name, n)
                await self.collection.replace_one(
                    {"_id": part_id},
                    {"_id": part_id, "batch_id": doc["batch_id"], "entries": chunk},
                    upsert=True,
                )
            head[name], parts[name] = [], len(chunks)
        if parts:
            head["parts"] = parts
        try:
            await self.collection.insert_one(head)
        except DuplicateKeyError:  # another handler stored it meanwhile: its plan stands
            stored = await self.get(doc["_id"])
            return stored if stored is not None else doc
        return doc  # as stored: not read back (a large plan's parts were just written)

    async def set(self, rollback_id: str, fields: dict[str, Any]) -> None:
        await self.collection.update_one({"_id": rollback_id}, {"$set": fields})

    async def drop(self, rollback_id: str) -> None:
        doc = await self.collection.find_one({"_id": rollback_id}, {"parts": 1})
        for name, count in ((doc or {}).get("parts") or {}).items():
            for n in range(count):
                await self.collection.delete_one({"_id": _part_id(rollback_id, name, n)})
        await self.collection.delete_one({"_id": rollback_id})

    async def drop_batch(self, batch_id: str) -> None:
        # a scan where FerretDB cannot use an index; a batch has few rollbacks, deletes are rare
        await self.collection.delete_many({"batch_id": batch_id})


def _part_id(rollback_id: str, name: str, n: int) -> str:
    return f"{rollback_id}:{name}:{n}"


__all__ = ["Backups", "Batches", "MongoBackups", "MongoPlans", "Plans", "ReadModelBatches"]
