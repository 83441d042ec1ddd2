"""Read access to what other services project or announce: the reporter's read models
(`batch_views`, `job_views` in buckets read by `_id` (`servicekit.buckets`), `batch_logs` and
`webhook_deliveries`) and `job_types` (announced by executors). The API never writes these."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.buckets import Buckets, bucket_id
from servicekit.jobviews import BUCKET_PROJECTION, unpack_bucket
from servicekit.store import Document


class ReadModels:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.views = db["batch_views"]
        self.jobs = db["job_views"]
        self.job_types_col = db["job_types"]
        self.deliveries = db["webhook_deliveries"]
        self.logs = db["batch_logs"]
        self.checks = db["rollback_check_views"]
        self._job_types: tuple[float, dict[str, Document]] = (0.0, {})

    async def batch_view(self, batch_id: str) -> Document | None:
        return await self.views.find_one({"_id": batch_id})

    async def check_view(self, check_id: str) -> Document | None:
        """How a rollback dry run's check went so far (the reporter's), if it began."""
        return await self.checks.find_one({"_id": check_id})

    async def batch_views_by_id(self, ids: list[str]) -> dict[str, Document]:
        """The views of these batches (a page of a listing), by id."""
        if not ids:
            return {}
        return {d["_id"]: d async for d in self.views.find({"_id": {"$in": ids}})}

    async def batch_ids_with_status(
        self, tenant: str, statuses: Sequence[str], before: str | None, size: int
    ) -> AsyncGenerator[list[str], None]:
        """Ids of the tenant's batches whose view is in one of `statuses` (before the id
        `before`, if given), newest first, `size` at a time. A caller that stops early stops
        the store's reading: sorted by `_id`, the local store reads the views in that order,
        narrowed by status in SQL (docs/architecture.md, "The store")."""
        query: dict[str, Any] = {"tenant": tenant, "status": {"$in": list(statuses)}}
        if before is not None:
            query["_id"] = {"$lt": before}
        cursor = self.views.find(query, {"_id": 1}).sort("_id", DESCENDING).batch_size(size)
        try:
            ids: list[str] = []
            async for doc in cursor:
                ids.append(doc["_id"])
                if len(ids) == size:
                    yield ids
                    ids = []
            if ids:
                yield ids
        finally:
            await cursor.close()

    async def batch_log(self, batch_id: str) -> list[Document]:
        """The batch's event log (commands, state changes, deadlines, rollbacks), oldest
        first."""
        doc = await self.logs.find_one({"_id": batch_id}, {"events": 1})
        entries = list(((doc or {}).get("events") or {}).values())
        return sorted(entries, key=log_order)

    async def webhook_deliveries(self, batch_id: str, limit: int = 1000) -> list[Document]:
        """The webhook deliveries of a batch (their ids start with `<batch id>:`)."""
        query = {"_id": {"$gte": f"{batch_id}:", "$lt": f"{batch_id};"}}
        return [d async for d in self.deliveries.find(query).limit(limit)]

    async def job_bucket(self, batch_id: str, layout: Buckets, bucket: int) -> dict[str, Document]:
        """The job views of one bucket (`j<k>` → full view, unpacked: `servicekit.jobviews`);
        empty if none was projected yet."""
        doc = await self.jobs.find_one({"_id": bucket_id(batch_id, bucket)}, BUCKET_PROJECTION)
        return unpack_bucket(doc, batch_id, layout, bucket)

    async def job_views(
        self, batch_id: str, layout: Buckets, total: int, first_index: int = 0
    ) -> AsyncIterator[tuple[int, Document]]:
        """(index, view) of every projected job from `first_index` on, in index order, read
        bucket by bucket by `_id`."""
        for bucket in range(layout.of(first_index)[0], layout.count(total)):
            views = await self.job_bucket(batch_id, layout, bucket)
            for key in sorted(views, key=lambda k: int(k[1:])):
                index = layout.index_of(bucket, key)
                if index >= first_index:
                    yield index, views[key]

    async def job_types(self, max_age_s: float = 2.0) -> dict[str, Document]:
        """Announced job types by name, with `input_schema` and `output_schema` (None when
        the type declares none) parsed. Cached briefly."""
        at, cached = self._job_types
        if time.monotonic() - at < max_age_s and cached:
            return cached
        found: dict[str, Document] = {}
        async for doc in self.job_types_col.find({}):
            doc["input_schema"] = json.loads(doc.get("input_schema_json") or "{}")
            output = doc.get("output_schema_json")
            doc["output_schema"] = json.loads(output) if output else None
            found[doc["_id"]] = doc
        self._job_types = (time.monotonic(), found)
        return found


def log_order(entry: Document) -> tuple[Any, int, int]:
    """A log entry's place: its time to the microsecond (the store keeps milliseconds in
    `at`, the reporter the microseconds of the second in `at_us`), then the scheduler's
    sequence. Events one producer stamps in the same millisecond (a batch's creation, items
    and submission) keep their order; the store returns their fields in no set order."""
    return (entry.get("at"), int(entry.get("at_us", 0)), int(entry.get("seq", 0)))
