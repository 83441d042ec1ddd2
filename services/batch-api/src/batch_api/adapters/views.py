"""Read access to what other services project or announce: `batch_views` (the reporter's
read model) and `job_types` (announced by executors). The API never writes these."""

from __future__ import annotations

import json
import time
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.store import Document


class ReadModels:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.views = db["batch_views"]
        self.job_types_col = db["job_types"]
        self._job_types: tuple[float, dict[str, Document]] = (0.0, {})

    async def batch_view(self, batch_id: str) -> Document | None:
        return await self.views.find_one({"_id": batch_id})

    async def batch_views(
        self, tenant: str, limit: int, before: tuple[Any, str] | None, status: str | None
    ) -> list[Document]:
        query: dict[str, Any] = {"tenant": tenant}
        if status:
            query["status"] = status
        if before is not None:
            created_at, batch_id = before
            query["$or"] = [
                {"created_at": {"$lt": created_at}},
                {"created_at": created_at, "_id": {"$lt": batch_id}},
            ]
        cursor = self.views.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return [d async for d in cursor.limit(limit)]

    async def job_types(self, max_age_s: float = 2.0) -> dict[str, Document]:
        """Announced job types by name, with `input_schema` parsed. Cached briefly."""
        at, cached = self._job_types
        if time.monotonic() - at < max_age_s and cached:
            return cached
        found: dict[str, Document] = {}
        async for doc in self.job_types_col.find({}):
            doc["input_schema"] = json.loads(doc.get("input_schema_json") or "{}")
            found[doc["_id"]] = doc
        self._job_types = (time.monotonic(), found)
        return found
