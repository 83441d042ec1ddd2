"""The rollbacks asked for and not ended yet (`rollback_queue`, owned here).

The request's handler only adds an entry and returns, so the consumer commits at once; the
runner (`rollback.handlers.runner`) plans and runs what is queued, and removes an entry when
its rollback has ended. An entry is small (the request, who runs it, until when): the runner
reads them all every few seconds, where the `rollbacks` collection beside it holds plans of
any size. Whoever runs a rollback holds a lease on its entry and renews it; another instance
takes over once it has run out (its process died). The local store can lose one of two
concurrent updates of a document (docs/architecture.md), so two instances claiming the same
expired lease at the same moment could both run it: compensations restore absolute state in
the plan's order and every event's id is derived, so that costs work, not correctness."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from rollback.domain.request import Request
from servicekit.store import Document

log = logging.getLogger(__name__)
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class Queue(Protocol):
    async def add(self, request: Request) -> None:
        """Queues the request; a repeat changes nothing."""

    async def pending(self) -> list[Request]:
        """Every queued request, oldest first."""

    async def claim(self, rollback_id: str, owner: str, until: datetime) -> bool:
        """Takes or renews the lease on a queued request for `owner` until `until`; False
        when another owner's lease has not run out, or the request is not queued."""

    async def release(self, rollback_id: str, owner: str) -> None:
        """Gives the lease up (another instance may take the request at once)."""

    async def done(self, rollback_id: str) -> None:
        """Removes the request: its rollback has ended."""

    async def drop_batch(self, batch_id: str) -> None:
        """Removes the batch's requests (it was deleted or purged)."""


class MongoQueue:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db["rollback_queue"]

    async def add(self, request: Request) -> None:
        doc = request.to_doc() | {"owner": None, "lease_until": NEVER}
        await self.collection.update_one(
            {"_id": request.rollback_id}, {"$setOnInsert": doc}, upsert=True
        )

    async def pending(self) -> list[Request]:
        found: list[Request] = []
        async for doc in self.collection.find({}, {"owner": 0, "lease_until": 0}):
            try:
                found.append(Request.from_doc(doc))
            except (KeyError, TypeError, ValidationError):
                log.exception("an unreadable queued rollback is dropped: %s", doc.get("_id"))
                await self.done(str(doc["_id"]))
        return sorted(found, key=lambda r: (r.occurred_at, r.rollback_id))

    async def claim(self, rollback_id: str, owner: str, until: datetime) -> bool:
        now = datetime.now(UTC)
        taken = await self.collection.update_one(
            {"_id": rollback_id, "$or": [{"owner": owner}, {"lease_until": {"$lt": now}}]},
            {"$set": {"owner": owner, "lease_until": until}},
        )
        return taken.matched_count == 1

    async def release(self, rollback_id: str, owner: str) -> None:
        await self.collection.update_one(
            {"_id": rollback_id, "owner": owner}, {"$set": {"owner": None, "lease_until": NEVER}}
        )

    async def done(self, rollback_id: str) -> None:
        await self.collection.delete_one({"_id": rollback_id})

    async def drop_batch(self, batch_id: str) -> None:
        await self.collection.delete_many({"batch_id": batch_id})
