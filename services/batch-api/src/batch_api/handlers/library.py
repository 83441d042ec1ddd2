"""The template library's use cases: CRUD and bulk import of templates, planning and starting
a consolidation (a `templates.consolidate` batch), and people's decisions on parked conflicts.

A consolidation is planned here so that related templates (duplicates, same names) share one
job; the batch is then created through the batch service like any other. With
`backup_strategy: manual` the whole scope is backed up (`backups`, `mb_…`) before the batch
exists, and the batch names that backup in `config.params.manual_backup_id`; when no batch
is made (the request is refused, or repeats an earlier one by its `Idempotency-Key`), the
backup is removed again."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batch_api.api.problems import Problem
from batch_api.domain.principal import Principal
from batch_api.handlers.batches import PRODUCER, BatchService, json_hash
from batch_api.library_schemas import (
    ConflictPublic,
    ConsolidationCreated,
    ConsolidationPlan,
    ConsolidationRequest,
    TemplateCreate,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
)
from batch_api.schemas import MAX_INLINE_ITEMS, BatchCreate, BatchPublic
from contracts.codec import envelope_for
from contracts.envelope import deterministic_event_id
from contracts.events import JobRetryRequested
from contracts.vocabulary import BatchConfig, Dependencies
from jobtypes.templates.consolidation import plan
from jobtypes.templates.library import TemplateLibrary, defects, new_template_id
from servicekit.backups import MongoBackups
from servicekit.publisher import Outgoing

JOB_TYPE = "templates.consolidate"


@dataclass
class LibraryService:
    library: TemplateLibrary
    backups: MongoBackups
    batches: BatchService

    # ------------------------------------------------------------------ templates
    async def create(self, body: TemplateCreate, who: Principal) -> TemplatePublic:
        _may_write(who)
        doc = _new_doc(body, who, datetime.now(UTC))
        await self.library.insert_many([doc])
        return public(doc)

    async def import_many(self, bodies: list[TemplateCreate], who: Principal) -> list[str]:
        _may_write(who)
        now = datetime.now(UTC)
        docs = [_new_doc(b, who, now) for b in bodies]
        await self.library.insert_many(docs)
        return [d["_id"] for d in docs]

    async def get(self, template_id: str, who: Principal) -> TemplatePublic:
        return public(await self._own(template_id, who))

    async def update(
        self, template_id: str, body: TemplateUpdate, who: Principal
    ) -> TemplatePublic:
        _may_write(who)
        current = await self._own(template_id, who)
        fields = body.model_dump(exclude_unset=True, exclude_none=True)
        if not fields and not defects(current):
            return public(current)
        now = datetime.now(UTC)
        fields |= {"updated_at": now, "version": _version(current) + 1}
        if not isinstance(current.get("created_at"), datetime):  # written outside the API
            fields["created_at"] = now
        updated = await self.library.update(template_id, fields)
        if updated is None:
            raise Problem(404, "Not found", f"no template {template_id}")
        return public(updated)

    async def delete(self, template_id: str, who: Principal) -> None:
        _may_write(who)
        await self._own(template_id, who)
        await self.library.write(template_id, None)

    async def page(
        self,
        who: Principal,
        *,
        limit: int,
        cursor: str | None,
        category: str | None,
        tag: str | None,
        status: str | None,
        q: str | None,
    ) -> TemplatePage:
        # Reads only as far as the page needs (a library can hold 100,000 templates).
        matching: list[dict[str, Any]] = []
        async for doc in self.library.iter_tenant(who.tenant, after=cursor):
            if _matches(doc, category, tag, status, q):
                matching.append(doc)
                if len(matching) > limit:
                    break
        page = matching[:limit]
        more = len(matching) > limit
        return TemplatePage(
            items=[public(d) for d in page], next_cursor=page[-1]["_id"] if more else None
        )

    async def _own(self, template_id: str, who: Principal) -> dict[str, Any]:
        doc = await self.library.get(template_id)
        if doc is None or doc.get("tenant") != who.tenant:
            raise Problem(404, "Not found", f"no template {template_id}")
        return doc

    # ------------------------------------------------------------------ consolidation
    async def plan(
        self, body: ConsolidationRequest, who: Principal
    ) -> tuple[list[list[str]], ConsolidationPlan, list[dict[str, Any]]]:
        docs = await self.library.of_tenant(who.tenant)
        active = [d for d in docs if d.get("status", "active") == "active"]
        missing: list[str] = []
        if body.template_ids is not None:
            wanted = set(body.template_ids)
            scope = [d for d in active if d["_id"] in wanted]
            missing = sorted(wanted - {d["_id"] for d in scope})
        elif body.filter is not None:
            f = body.filter
            scope = [
                d
                for d in active
                if (f.category is None or d.get("category") == f.category)
                and (not f.tags or set(f.tags) & set(_texts(d.get("tags"))))
                and (
                    f.name_contains is None
                    or f.name_contains.lower() in _text(d.get("name")).lower()
                )
            ]
        else:
            scope = active
        unreadable = [(d["_id"], found) for d in scope if (found := defects(d))]
        if unreadable:
            listed = "; ".join(f"{i}: {', '.join(found)}" for i, found in unreadable[:10])
            raise Problem(
                422,
                "Templates the consolidation cannot read",
                f"{len(unreadable)} template(s) in the scope are not whole templates (written "
                f"outside the API?): {listed}. Mend them (PATCH) or delete them, or leave them "
                "out of the scope.",
                invalid_templates=[{"id": i, "defects": found} for i, found in unreadable[:100]],
            )
        # CPU-bound (seconds for tens of thousands of templates): in a worker thread, so the
        # event loop keeps answering requests and the consumers' heartbeats meanwhile
        jobs, expected = await asyncio.to_thread(
            plan, scope, body.similarity_threshold, body.templates_per_job
        )
        return jobs, ConsolidationPlan(**expected, missing_ids=missing), scope

    async def start(
        self,
        body: ConsolidationRequest,
        who: Principal,
        idempotency_key: str | None,
        *,
        origin: Mapping[str, str | None] | None = None,
        depends: Dependencies | None = None,
    ) -> tuple[ConsolidationCreated, bool]:
        """The consolidation's batch, and whether this request made it (False: a repeat of an
        earlier one by its `Idempotency-Key`). `origin` and `depends`: a schedule's run (its
        id; the batch of its previous run, when it queues behind it)."""
        _may_write(who)
        # a repeat is the same consolidation asked again, whatever the library holds by then
        # (once the batch ran, its templates may be merged): answered before planning anew
        request_hash = json_hash({"consolidation": body.model_dump(mode="json")})
        if idempotency_key:
            earlier = await self.batches.repeat_of(who, idempotency_key, request_hash)
            if earlier is not None:
                return _repeat(earlier), False
        jobs, summary, scope = await self.plan(body, who)
        if summary.missing_ids:
            raise Problem(
                422,
                "Unknown templates",
                f"{len(summary.missing_ids)} template id(s) are not active templates of this "
                f"library: {', '.join(summary.missing_ids[:10])}",
                missing_ids=summary.missing_ids[:100],
            )
        if not jobs:
            raise Problem(422, "Nothing to consolidate", "the scope holds no active templates")
        params: dict[str, Any] = {
            "operation": body.operation,
            "conflict_resolution": body.conflict_resolution,
            "similarity_threshold": body.similarity_threshold,
            "backup_strategy": body.backup_strategy,
        }
        manual_id = None
        if body.backup_strategy == "manual":
            manual_id = "mb_" + os.urandom(10).hex()
            await self.backups.put(
                manual_id,
                batch_id="",
                job_type=JOB_TYPE,
                snapshot={"templates": {d["_id"]: d for d in scope}},
                job_id=None,
                item={"template_ids": [d["_id"] for d in scope]},
                attempt=0,
                created_at=datetime.now(UTC),
            )
            params["manual_backup_id"] = manual_id
        # A request body carries at most MAX_INLINE_ITEMS items; a larger plan is made by the
        # server, so the batch is created with all of it at once (stored whole before it is
        # published: a request cut short leaves no half-filled draft behind).
        items = [{"template_ids": job} for job in jobs]
        try:
            batch, created = await self.batches.create(
                BatchCreate(
                    name=body.name,
                    description=body.description,
                    job_type=JOB_TYPE,
                    priority=body.priority,
                    tags=body.tags,
                    items=items[:MAX_INLINE_ITEMS],
                    config=BatchConfig(
                        max_concurrent_jobs=body.max_concurrent_jobs,
                        stop_on_error=body.stop_on_error,
                        rollback_on_failure=body.rollback_on_failure,
                        params=params,
                        depends_on=depends,
                    ),
                ),
                who,
                idempotency_key,
                origin,
                request_hash=request_hash,  # not the batch's body: it holds this backup's id
                all_items=items,
            )
        except BaseException:
            if manual_id is not None:  # no batch was made: nothing will ever restore it
                await self.backups.discard(manual_id)
            raise
        if not created:  # a repeat sent while the first was being made: answered as one
            if manual_id is not None:  # the first request's backup stands
                await self.backups.discard(manual_id)
            return _repeat(batch), False
        if manual_id is not None:
            await self.backups.assign(manual_id, batch.id)
        made = ConsolidationCreated(
            batch_id=batch.id, status=batch.status, plan=summary, manual_backup_id=manual_id
        )
        return made, created

    # ------------------------------------------------------------------ conflicts
    async def conflict(self, conflict_id: str, who: Principal) -> ConflictPublic:
        doc = await self.library.conflict(conflict_id)
        if doc is None:
            raise Problem(404, "Not found", f"no conflict {conflict_id}")
        await self.batches.get(doc["batch_id"], who)  # 404 for another tenant's batch
        return _conflict_public(doc)

    async def conflicts(
        self, batch_id: str, who: Principal, status: str | None
    ) -> list[ConflictPublic]:
        """The conflicts the batch parked (404 for a batch the caller may not see)."""
        await self.batches.get(batch_id, who)
        docs = await self.library.conflicts_of(batch_id)
        return [_conflict_public(d) for d in docs if status is None or d["status"] == status]

    async def decide(self, conflict_id: str, keep: str, who: Principal) -> ConflictPublic:
        """Records the decision and retries the parked job, which applies it."""
        _may_write(who)
        current = await self.conflict(conflict_id, who)
        if keep not in current.template_ids:
            raise Problem(
                422,
                "Not in the conflict",
                f"{keep} is not one of the conflicting templates {current.template_ids}",
            )
        doc = await self.library.decide(conflict_id, keep, who.user, datetime.now(UTC))
        assert doc is not None
        retry = JobRetryRequested(
            batch_id=current.batch_id, job_id=current.job_id, requested_by=who.user
        )
        env = envelope_for(
            retry,
            producer=PRODUCER,
            tenant=who.tenant,
            event_id=deterministic_event_id(current.job_id, "decision", conflict_id, keep),
        )
        await self.batches.publisher.publish(
            [Outgoing(self.batches.topics.batch_commands, current.batch_id, env)]
        )
        return _conflict_public(doc)


def public(doc: dict[str, Any]) -> TemplatePublic:
    """The template as the API shows it; a document written outside the API is shown as far
    as it reads, with its `defects` named (so it can be mended with a PATCH, or deleted)."""
    found = defects(doc)
    if not found:
        return TemplatePublic(
            id=doc["_id"],
            name=doc["name"],
            category=doc.get("category") or "general",
            body=doc["body"],
            variables=doc.get("variables") or [],
            tags=doc.get("tags") or [],
            status=doc.get("status", "active"),
            canonical_id=doc.get("canonical_id"),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=int(doc.get("version") or 1),
        )
    canonical = doc.get("canonical_id")
    return TemplatePublic(
        id=str(doc["_id"]),
        name=_text(doc.get("name")),
        category=_text(doc.get("category")) or "general",
        body=_text(doc.get("body")),
        variables=_texts(doc.get("variables")),
        tags=_texts(doc.get("tags")),
        status=_text(doc.get("status", "active")),
        canonical_id=canonical if isinstance(canonical, str) else None,
        created_at=_date(doc.get("created_at")),
        updated_at=_date(doc.get("updated_at")),
        version=_version(doc),
        defects=found,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _texts(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _date(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _version(doc: dict[str, Any]) -> int:
    version = doc.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def _new_doc(body: TemplateCreate, who: Principal, now: datetime) -> dict[str, Any]:
    return {
        "_id": new_template_id(),
        "tenant": who.tenant,
        "name": body.name,
        "category": body.category,
        "body": body.body,
        "variables": body.variables,
        "tags": body.tags,
        "status": "active",
        "canonical_id": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _matches(
    doc: dict[str, Any], category: str | None, tag: str | None, status: str | None, q: str | None
) -> bool:
    return (
        (category is None or doc.get("category") == category)
        and (tag is None or tag in _texts(doc.get("tags")))
        and (status is None or doc.get("status", "active") == status)
        and (
            q is None
            or bool(
                re.search(re.escape(q), _text(doc.get("name")) + " " + _text(doc.get("body")), re.I)
            )
        )
    )


def _may_write(who: Principal) -> None:
    if not who.may("operator"):
        raise Problem(403, "Forbidden", "a viewer key cannot change the template library")


def _conflict_public(doc: dict[str, Any]) -> ConflictPublic:
    return ConflictPublic(
        id=doc["_id"],
        name=doc["name"],
        template_ids=doc["template_ids"],
        batch_id=doc["batch_id"],
        job_id=doc["job_id"],
        status=doc["status"],
        decision=doc.get("decision"),
    )


def _repeat(batch: BatchPublic) -> ConsolidationCreated:
    """The answer to a repeat of the request that made `batch`: its batch and manual backup;
    no plan (that was the first request's, of the library as it was then)."""
    params = batch.config.get("params") or {}
    return ConsolidationCreated(
        batch_id=batch.id,
        status=batch.status,
        plan=None,
        manual_backup_id=params.get("manual_backup_id"),
    )
