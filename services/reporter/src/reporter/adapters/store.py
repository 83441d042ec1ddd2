"""Applying projection writes to the store in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from reporter.domain.projection import BATCH_VIEWS, JOB_VIEWS, Write
from servicekit.store import Document


class MongoProjectionStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db

    async def setup(self) -> None:
        jobs = self.db[JOB_VIEWS]
        await jobs.create_index([("batch_id", ASCENDING), ("index", ASCENDING)])
        await jobs.create_index([("batch_id", ASCENDING), ("status", ASCENDING)])
        views = self.db[BATCH_VIEWS]
        await views.create_index([("tenant", ASCENDING), ("created_at", DESCENDING)])
        await views.create_index([("status", ASCENDING)])

    async def apply(self, writes: Sequence[Write]) -> None:
        """Creates missing documents with their initial fields, then applies every update
        where its guard holds. Neither step can fail on an older or repeated event, so no
        duplicate-key path is relied on (FerretDB answers that path incompletely)."""
        creates: dict[str, dict[str, UpdateOne]] = defaultdict(dict)
        updates: dict[str, list[UpdateOne]] = defaultdict(list)
        for w in writes:
            if w.initial and w.doc_id not in creates[w.collection]:
                creates[w.collection][w.doc_id] = UpdateOne(
                    {"_id": w.doc_id}, {"$setOnInsert": w.initial}, upsert=True
                )
            updates[w.collection].append(UpdateOne({"_id": w.doc_id, **w.guard}, w.update))
        for name, ops in creates.items():
            await self.db[name].bulk_write(list(ops.values()), ordered=False)
        for name, update_ops in updates.items():
            # Ordered, so two events about one document apply in the order they arrived;
            # the guards make the result the same in any order anyway.
            await self.db[name].bulk_write(update_ops, ordered=True)
