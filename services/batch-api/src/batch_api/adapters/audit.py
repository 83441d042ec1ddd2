"""The audit log: one record per state-changing call (who, what, when, result), newest first.

`AuditTrail` writes a record once the call's outcome is known and before the caller hears
it. A store error while writing one is logged, not raised: the call it describes has already
happened, and refusing to answer would not undo it."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.store import Document

log = logging.getLogger(__name__)


def new_audit_id() -> str:
    """Time-ordered, unique: 12 hex digits of milliseconds and 8 random ones."""
    return f"a_{int(time.time() * 1000):012x}{os.urandom(4).hex()}"


class AuditLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.entries = db["audit_log"]

    async def record(self, entry: Document) -> None:
        try:
            await self.entries.insert_one({"_id": new_audit_id(), **entry})
        except Exception:
            log.exception("could not write an audit record: %s", entry)

    async def find(
        self,
        tenant: str,
        *,
        user: str | None,
        method: str | None,
        resource: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        before_id: str | None,
    ) -> list[Document]:
        """The tenant's records matching the filters, newest first."""
        query: dict[str, Any] = {"tenant": tenant}
        if user is not None:
            query["user"] = user
        if method is not None:
            query["method"] = method.upper()
        if resource is not None:
            query["resource"] = resource
        at: dict[str, datetime] = {}
        if since is not None:
            at["$gte"] = since
        if until is not None:
            at["$lt"] = until
        if at:
            query["at"] = at
        if before_id is not None:
            query["_id"] = {"$lt": before_id}
        cursor = self.entries.find(query).sort("_id", DESCENDING).limit(limit)
        return [d async for d in cursor]
