"""The template library in the store: `library_templates` (the templates) and
`library_conflicts` (conflicts parked for a person's decision, by conflict id). Every write
is `_id`-keyed; listing a tenant's library scans it, which is what a library page needs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]
TEMPLATES = "library_templates"
CONFLICTS = "library_conflicts"
MAX_SCOPE = 100_000
STATUSES = ("active", "merged", "archived")


def new_template_id() -> str:
    return "t_" + os.urandom(8).hex()


def defects(doc: Document) -> list[str]:
    """What keeps a stored document from being read as a template (empty: nothing).

    The API writes only whole templates, but the collection is the store's: a bulk load or an
    older tool can leave a document without a body, or with tags that are not a list. Such a
    document is still listed (so it can be mended or deleted), and a consolidation refuses it
    rather than guess what it holds."""
    found: list[str] = []
    for field in ("name", "body"):
        value = doc.get(field)
        if not isinstance(value, str) or not value:
            found.append(f"no {field}" if value in (None, "") else f"{field} is not text")
    if doc.get("category") is not None and not isinstance(doc["category"], str):
        found.append("category is not text")
    for field in ("tags", "variables"):
        value = doc.get(field)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            found.append(f"{field} is not a list of text")
    if doc.get("status", "active") not in STATUSES:
        found.append(f"status is not one of {', '.join(STATUSES)}")
    for field in ("created_at", "updated_at"):
        if not isinstance(doc.get(field), datetime):
            found.append(f"no {field}" if doc.get(field) is None else f"{field} is not a date")
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        found.append("version is not a whole number")
    return found


class TemplateLibrary:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.templates = db[TEMPLATES]
        self.conflicts = db[CONFLICTS]

    async def get(self, template_id: str) -> Document | None:
        return await self.templates.find_one({"_id": template_id})

    async def get_many(self, ids: Sequence[str]) -> dict[str, Document]:
        """The templates with these ids that exist (one `_id` lookup each)."""
        found: dict[str, Document] = {}
        for template_id in ids:
            doc = await self.get(template_id)
            if doc is not None:
                found[template_id] = doc
        return found

    async def insert_many(self, docs: list[Document]) -> None:
        if docs:
            await self.templates.insert_many(docs, ordered=True)

    async def write(self, template_id: str, doc: Document | None) -> None:
        """Sets the template to exactly `doc` (None deletes it): safe to repeat."""
        if doc is None:
            await self.templates.delete_one({"_id": template_id})
        else:
            await self.templates.replace_one({"_id": template_id}, doc, upsert=True)

    async def update(self, template_id: str, fields: dict[str, Any]) -> Document | None:
        result = await self.templates.update_one({"_id": template_id}, {"$set": fields})
        return await self.get(template_id) if result.matched_count else None

    async def of_tenant(
        self, tenant: str, *, after: str | None = None, limit: int = MAX_SCOPE
    ) -> list[Document]:
        query: dict[str, Any] = {"tenant": tenant}
        if after:
            query["_id"] = {"$gt": after}
        cursor = self.templates.find(query).sort("_id", ASCENDING).limit(limit)
        return [d async for d in cursor]

    def iter_tenant(self, tenant: str, *, after: str | None = None) -> AsyncIterator[Document]:
        """The tenant's templates in `_id` order, read lazily (stop reading when done)."""
        query: dict[str, Any] = {"tenant": tenant}
        if after:
            query["_id"] = {"$gt": after}
        cursor: AsyncIterator[Document] = (
            self.templates.find(query).sort("_id", ASCENDING).limit(MAX_SCOPE).batch_size(200)
        )
        return cursor

    async def park_conflict(self, doc: Document) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.conflicts.insert_one(doc)

    async def conflict(self, conflict_id: str) -> Document | None:
        return await self.conflicts.find_one({"_id": conflict_id})

    async def conflicts_of(self, batch_id: str, limit: int = 500) -> list[Document]:
        """The conflicts a batch parked, oldest first (conflicts are few: the scan this
        filter costs stays small)."""
        docs = [d async for d in self.conflicts.find({"batch_id": batch_id}).limit(limit)]
        return sorted(docs, key=lambda d: (d.get("created_at"), d["_id"]))

    async def decide(self, conflict_id: str, keep: str, by: str, at: datetime) -> Document | None:
        await self.conflicts.update_one(
            {"_id": conflict_id},
            {"$set": {"status": "decided", "decision": {"keep": keep}, "by": by, "at": at}},
        )
        return await self.conflict(conflict_id)
