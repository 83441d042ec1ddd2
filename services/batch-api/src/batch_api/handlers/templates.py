"""Batch templates: reusable batch specifications, shared by their owner, instantiated into
batches.

Who sees a template: its owner, the users it is shared with, every admin of the tenant, and
everyone in the tenant when its visibility is `tenant`. Who changes or deletes it: its owner
or an admin. Any other caller, and every other tenant, gets a 404 (its existence is not
revealed). Instantiating needs the operator role, like creating a batch."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from batch_api.adapters.registry import live_items
from batch_api.api.problems import Problem
from batch_api.domain.principal import Principal
from batch_api.domain.sharing import may_change, may_see, visible_page
from batch_api.handlers.batches import BatchService
from batch_api.handlers.lifecycle import require
from batch_api.schemas import MAX_INLINE_ITEMS, BatchCreate, BatchPublic
from batch_api.template_schemas import (
    CategoryCount,
    Instantiate,
    TemplateCreate,
    TemplateFromBatch,
    TemplatePage,
    TemplatePublic,
    TemplateSpec,
    TemplateUpdate,
)
from contracts.tolerant import validate_tolerantly
from contracts.vocabulary import BatchConfig
from servicekit.store import Document

MAX_SCAN = 5000  # templates per tenant a listing looks through


def new_template_id() -> str:
    """Time-ordered, unique: 12 hex digits of milliseconds and 8 random ones."""
    return f"t_{int(time.time() * 1000):012x}{os.urandom(4).hex()}"


def instantiation(doc: Document, body: Instantiate) -> BatchCreate:
    """The batch a template makes with these overrides; a 422 problem if it has no items."""
    spec = doc["spec"]
    items = body.items if body.items is not None else spec.get("items")
    if not items:
        raise Problem(
            422,
            "Items required",
            "this template has no items of its own: give `items` to instantiate it",
            kind="items-required",
        )
    config: dict[str, Any] = {**(spec.get("config") or {}), **(body.config or {})}
    return BatchCreate(
        name=body.name or doc["name"],
        description=body.description if body.description is not None else doc["description"],
        job_type=spec["job_type"],
        priority=body.priority if body.priority is not None else spec.get("priority", "medium"),
        tags=body.tags if body.tags is not None else spec.get("tags", []),
        deadline=body.deadline,
        items=items,
        config=BatchConfig.model_validate(config),
    )


@dataclass
class TemplateService:
    db: AsyncDatabase[Document]
    batches: BatchService

    @property
    def templates(self) -> Any:
        return self.db["batch_templates"]

    async def create(self, body: TemplateCreate, who: Principal) -> TemplatePublic:
        require(who)
        await self.batches.validate_items(body.spec.job_type, body.spec.items or [])
        await self.batches.check_rollback_on_failure(body.spec.job_type, body.spec.config)
        now = _now()
        doc: Document = {
            "_id": new_template_id(),
            "tenant": who.tenant,
            "owner": who.user,
            **body.model_dump(mode="json", exclude={"spec"}),
            "spec": body.spec.model_dump(mode="json"),
            "usage_count": 0,
            "last_used_at": None,
            "created_at": now,
            "updated_at": None,
        }
        try:
            await self.templates.insert_one(doc)
        except DuplicateKeyError as exc:  # an id collision: vanishingly rare; let them retry
            raise Problem(409, "Conflict", "please retry") from exc
        return TemplatePublic.of(doc)

    async def from_batch(self, body: TemplateFromBatch, who: Principal) -> TemplatePublic:
        """A template made from a batch the caller may see (404 otherwise); a 422 problem if
        its items do not fit in a template."""
        require(who)
        found = await self.batches.load(body.batch_id, who)
        doc = found.doc
        items: list[dict[str, Any]] | None = None
        if body.with_items:
            total = int(doc.get("total") or 0)
            if total > MAX_INLINE_ITEMS:
                raise Problem(
                    422,
                    "Too many items",
                    f"the batch has {total:,} items; a template holds at most "
                    f"{MAX_INLINE_ITEMS:,}. Save it without items (`with_items: false`)",
                    kind="too-many-items",
                )
            items = []
            async for chunk in self.batches.registry.chunks(doc["_id"], doc.get("chunks")):
                items.extend(item for _, item in live_items(chunk))
        spec = TemplateSpec(
            job_type=doc["job_type"],
            priority=doc.get("priority", "medium"),
            tags=doc.get("tags", []),
            config=validate_tolerantly(BatchConfig, doc["config"]),
            items=items or None,
        )
        create = TemplateCreate(**body.model_dump(exclude={"batch_id", "with_items"}), spec=spec)
        return await self.create(create, who)

    async def load(self, template_id: str, who: Principal) -> Document:
        doc: Document | None = await self.templates.find_one({"_id": template_id})
        if doc is None or not may_see(doc, who):
            raise Problem(404, "Not found", f"no template {template_id}")
        return doc

    async def page(
        self,
        who: Principal,
        *,
        category: str | None,
        q: str | None,
        owner: str | None,
        limit: int,
        cursor: str | None,
    ) -> TemplatePage:
        """Templates the caller may see, newest first. The tenant's templates are read in one
        bounded pass (FerretDB scans on any filter other than `_id`, so filtering by tenant
        in the query costs the same as here)."""
        query: dict[str, Any] = {"tenant": who.tenant}
        if cursor is not None:
            query["_id"] = {"$lt": cursor}
        found = self.templates.find(query).sort("_id", DESCENDING).limit(MAX_SCAN)

        def keep(doc: Document) -> bool:
            return (
                (category is None or doc.get("category") == category)
                and (owner is None or doc.get("owner") == owner)
                and (q is None or q.lower() in doc["name"].lower())
            )

        page, next_cursor = await visible_page(found, who, keep, limit)
        return TemplatePage(items=[TemplatePublic.of(d) for d in page], next_cursor=next_cursor)

    async def categories(self, who: Principal) -> list[CategoryCount]:
        counts: dict[str, int] = {}
        async for doc in self.templates.find({"tenant": who.tenant}).limit(MAX_SCAN):
            if may_see(doc, who):
                category = str(doc.get("category", "general"))
                counts[category] = counts.get(category, 0) + 1
        return [CategoryCount(category=c, templates=n) for c, n in sorted(counts.items())]

    async def update(
        self, template_id: str, body: TemplateUpdate, who: Principal
    ) -> TemplatePublic:
        doc = await self._changeable(template_id, who)
        changes = body.model_dump(mode="json", exclude_unset=True)
        for required in ("name", "category", "visibility", "shared_with", "spec"):
            if required in changes and changes[required] is None:
                raise Problem(422, "Invalid request", f"{required}: may not be null")
        if body.spec is not None:
            await self.batches.validate_items(body.spec.job_type, body.spec.items or [])
            await self.batches.check_rollback_on_failure(body.spec.job_type, body.spec.config)
        if not changes:
            return TemplatePublic.of(doc)
        changes["updated_at"] = _now()
        updated: Document | None = await self.templates.find_one_and_update(
            {"_id": template_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )
        if updated is None:
            raise Problem(404, "Not found", f"no template {template_id}")
        return TemplatePublic.of(updated)

    async def delete(self, template_id: str, who: Principal) -> None:
        await self._changeable(template_id, who)
        await self.templates.delete_one({"_id": template_id})

    async def instantiate(
        self, template_id: str, body: Instantiate, who: Principal, idempotency_key: str | None
    ) -> tuple[BatchPublic, bool]:
        """A batch from the template (201), or the earlier one for a repeated
        `Idempotency-Key` with the same body (200). Counts the use."""
        require(who)
        doc = await self.load(template_id, who)
        try:
            create = instantiation(doc, body)
        except ValueError as exc:  # a config override the batch config does not accept
            raise Problem(422, "Invalid request", str(exc), kind="invalid-request") from exc
        origin = {"template_id": template_id}
        batch, created = await self.batches.create(create, who, idempotency_key, origin)
        if created:
            await self.templates.update_one(
                {"_id": template_id},
                {"$inc": {"usage_count": 1}, "$set": {"last_used_at": _now()}},
            )
        return batch, created

    async def _changeable(self, template_id: str, who: Principal) -> Document:
        doc = await self.load(template_id, who)
        if not may_change(doc, who):
            raise Problem(403, "Forbidden", "only the template's owner or an admin may change it")
        return doc


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # what the store keeps
