"""Schedules: batch-api keeps their definitions and makes their batches; the scheduler's
leader decides when they are due.

- Every change (create, update, enable/disable, delete) is stored, then announced as
  `ScheduleChanged` with a rising `revision`; at start the API announces every schedule again
  (the scheduler keeps the highest revision), so a change whose announcement was lost in a
  crash still reaches it.
- A run — `ScheduleTriggered` from the scheduler, or `trigger` by a person — is handled by
  `run`: one batch per `run_id` (it is the batch's idempotency key, and a run already in the
  schedule's history is not handled again), after the overlap policy looked at the previous
  run's batch: `skip` this run while it is unfinished, `queue` this one behind it
  (`depends_on` it, `on: finished`), or `cancel_previous`.
- A run that cannot make its batch (its template was deleted, its job type is gone) is
  recorded as `failed` with the reason; it is not retried.
- A one-run schedule (`run_at`) is a cron naming that second (`contracts.cron.once_cron`)
  with `catch_up: latest`; after its due run, or a manual one that made its batch, it
  disables itself."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from batch_api.api.problems import Problem
from batch_api.domain.lifecycle import TERMINAL
from batch_api.domain.principal import Principal
from batch_api.domain.sharing import may_change, may_see, visible_page
from batch_api.handlers.batches import BatchService
from batch_api.handlers.library import LibraryService
from batch_api.handlers.lifecycle import BatchLifecycle, require
from batch_api.handlers.templates import TemplateService, instantiation
from batch_api.library_schemas import ConsolidationRequest
from batch_api.schedule_schemas import (
    ScheduleCreate,
    SchedulePage,
    SchedulePublic,
    ScheduleRun,
    ScheduleRuns,
    ScheduleUpdate,
)
from batch_api.schemas import BatchCreate
from batch_api.template_schemas import Instantiate, TemplateSpec
from contracts.codec import envelope_for
from contracts.cron import next_times, once_cron
from contracts.envelope import Envelope
from contracts.events import Event, ScheduleChanged, ScheduleTriggered
from contracts.tolerant import validate_tolerantly
from contracts.topics import Topics
from contracts.vocabulary import Dependencies
from servicekit.publisher import EventPublisher, Outgoing
from servicekit.store import Document

log = logging.getLogger(__name__)
PRODUCER = "batch-api"
KEEP_RUNS = 50
MAX_SCAN = 5000


def new_schedule_id() -> str:
    return f"s_{int(time.time() * 1000):012x}{os.urandom(4).hex()}"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class ScheduleService:
    db: AsyncDatabase[Document]
    batches: BatchService
    lifecycle: BatchLifecycle
    templates: TemplateService
    publisher: EventPublisher
    topics: Topics
    library: LibraryService | None = None  # for schedules of consolidations

    @property
    def schedules(self) -> Any:
        return self.db["schedules"]

    # ------------------------------------------------------------------ definitions
    async def create(self, body: ScheduleCreate, who: Principal) -> SchedulePublic:
        require(who)
        await self._check_source(body.template_id, body.spec, who)
        now = _now()
        fields = body.model_dump(mode="json")
        if body.run_at is not None:
            fields |= {
                "run_at": body.run_at,
                "cron": once_cron(body.run_at, body.timezone),
                "catch_up": "latest",  # a run missed while no scheduler ran is still made
            }
        doc: Document = {
            "_id": new_schedule_id(),
            "tenant": who.tenant,
            "owner": who.user,
            **fields,
            "revision": 1,
            "created_at": now,
            "updated_at": None,
            "run_count": 0,
            "runs": [],
            "last_batch_id": None,
        }
        await self.schedules.insert_one(doc)
        await self._announce(doc)
        return self.public(doc)

    async def load(self, schedule_id: str, who: Principal) -> Document:
        doc: Document | None = await self.schedules.find_one({"_id": schedule_id})
        if doc is None or not may_see(doc, who):
            raise Problem(404, "Not found", f"no schedule {schedule_id}")
        return doc

    async def page(
        self, who: Principal, *, enabled: bool | None, q: str | None, limit: int, cursor: str | None
    ) -> SchedulePage:
        query: dict[str, Any] = {"tenant": who.tenant}
        if cursor is not None:
            query["_id"] = {"$lt": cursor}
        found = self.schedules.find(query).sort("_id", DESCENDING).limit(MAX_SCAN)

        def keep(doc: Document) -> bool:
            return (enabled is None or bool(doc.get("enabled")) == enabled) and (
                q is None or q.lower() in doc["name"].lower()
            )

        page, next_cursor = await visible_page(found, who, keep, limit)
        return SchedulePage(items=[self.public(d) for d in page], next_cursor=next_cursor)

    async def update(
        self, schedule_id: str, body: ScheduleUpdate, who: Principal
    ) -> SchedulePublic:
        doc = await self._changeable(schedule_id, who)
        changes = body.model_dump(mode="json", exclude_unset=True)
        for required in ("name", "cron", "timezone", "enabled", "overlap", "catch_up"):
            if required in changes and changes[required] is None:
                raise Problem(422, "Invalid request", f"{required}: may not be null")
        source = next((k for k in ("template_id", "spec", "consolidation") if doc.get(k)), None)
        for given in ("spec", "consolidation"):
            if given in changes and changes[given] is None:
                raise Problem(422, "Invalid request", f"{given}: may not be null")
            if given in changes and source != given:
                kind = {"template_id": "a template", "spec": "a spec"}.get(
                    source or "", "a consolidation"
                )
                raise Problem(422, "Invalid request", f"this schedule uses {kind}, not `{given}`")
        if "overrides" in changes and doc.get("template_id") is None:
            raise Problem(422, "Invalid request", "`overrides` go with a template")
        if body.spec is not None:
            if not body.spec.items:
                raise Problem(422, "Invalid request", "`spec.items` is required")
            await self._check_source(None, body.spec, who)
        if not changes:
            return self.public(doc)
        run_at = body.run_at
        if run_at is not None:
            changes |= {"run_at": run_at, "catch_up": "latest"}
            changes.setdefault("enabled", True)  # a new time arms it again
        elif "cron" in changes:
            changes["run_at"] = None  # recurring from now on
        elif "timezone" in changes and doc.get("run_at") is not None:
            run_at = _aware(doc["run_at"])
        once_passed = doc.get("run_at") is not None and _aware(doc["run_at"]) <= _now()
        if changes.get("enabled") and once_passed and body.run_at is None and body.cron is None:
            raise Problem(
                422,
                "Invalid request",
                "run_at: this one-run schedule's time has passed; give a new `run_at` (or a "
                "`cron`) to enable it",
            )
        if run_at is not None:
            changes["cron"] = once_cron(run_at, changes.get("timezone") or doc["timezone"])
        changes["updated_at"] = _now()
        updated: Document | None = await self.schedules.find_one_and_update(
            {"_id": schedule_id},
            {"$set": changes, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise Problem(404, "Not found", f"no schedule {schedule_id}")
        await self._announce(updated)
        return self.public(updated)

    async def delete(self, schedule_id: str, who: Principal) -> None:
        doc = await self._changeable(schedule_id, who)
        await self._announce({**doc, "revision": int(doc["revision"]) + 1}, deleted=True)
        await self.schedules.delete_one({"_id": schedule_id})

    async def runs(self, schedule_id: str, who: Principal) -> ScheduleRuns:
        doc = await self.load(schedule_id, who)
        return ScheduleRuns(items=list(reversed(doc.get("runs") or [])))

    async def announce_all(self) -> None:
        """Announces every schedule's current revision (at start: heals a lost announcement),
        in one round trip to the broker."""
        docs = [d async for d in self.schedules.find({}).limit(MAX_SCAN)]
        if docs:
            await self.publisher.publish([self._announcement(d) for d in docs])

    def public(self, doc: Document) -> SchedulePublic:
        upcoming: list[datetime] = []
        if doc.get("enabled"):
            count = 1 if doc.get("run_at") is not None else 5
            upcoming = next_times(doc["cron"], doc["timezone"], datetime.now(UTC), count)
        return SchedulePublic.of(doc, upcoming)

    # ------------------------------------------------------------------ runs
    async def trigger(self, schedule_id: str, who: Principal) -> ScheduleRun:
        """A run now, by a person: the same as a due run, under its own run id. For a
        one-run schedule it is that one run: the schedule rests afterwards."""
        require(who)
        doc = await self.load(schedule_id, who)
        run = f"{schedule_id}@manual-{uuid.uuid4().hex[:12]}"
        made = await self.run(doc, run, _now(), trigger="manual")
        if doc.get("run_at") is not None and made.outcome == "created":
            await self._ran_once(doc)
        return made

    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Consumer of `Topics.schedules`: makes the batch of every fired run."""
        for _, event in items:
            if not isinstance(event, ScheduleTriggered):
                continue
            doc: Document | None = await self.schedules.find_one({"_id": event.schedule_id})
            if doc is None:
                log.info("run %s of a deleted schedule: nothing to do", event.run_id)
                continue
            if not doc.get("enabled"):
                log.info("run %s of a disabled schedule: not run", event.run_id)
                continue
            await self.run(doc, event.run_id, event.run_at, trigger="cron", missed=event.missed)
            if doc.get("run_at") is not None:
                await self._ran_once(doc)

    async def _ran_once(self, doc: Document) -> None:
        """Disables a one-run schedule after its due run."""
        updated: Document | None = await self.schedules.find_one_and_update(
            {"_id": doc["_id"], "enabled": True},
            {"$set": {"enabled": False, "updated_at": _now()}, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None:
            await self._announce(updated)

    async def run(
        self,
        doc: Document,
        run_id: str,
        run_at: datetime,
        *,
        trigger: str,
        missed: bool = False,
    ) -> ScheduleRun:
        earlier = next((r for r in doc.get("runs") or [] if r["run_id"] == run_id), None)
        if earlier is not None:
            return ScheduleRun.model_validate(earlier)
        owner = Principal(
            key_id=f"schedule:{doc['_id']}",
            tenant=doc["tenant"],
            user=doc["owner"],
            role="operator",
        )
        record: dict[str, Any] = {
            "run_id": run_id,
            "run_at": run_at,
            "trigger": trigger,
            "missed": missed,
            "batch_id": None,
            "detail": None,
        }
        made = await self.batches.registry.batch_for_idempotency_key(doc["tenant"], run_id)
        if made is not None:  # made before a crash kept the run out of the history
            record |= {"outcome": "created", "batch_id": made}
            return await self._record(doc, record)
        previous = await self._unfinished_previous(doc, owner)
        depends: Dependencies | None = None
        if previous is not None and doc["overlap"] == "skip":
            record |= {"outcome": "skipped", "detail": f"the previous run's batch {previous} "
                       "is still unfinished (overlap: skip)"}  # fmt: skip
            return await self._record(doc, record)
        if previous is not None and doc["overlap"] == "queue":
            depends = Dependencies(batches=[previous], on="finished")
        if previous is not None and doc["overlap"] == "cancel_previous":
            try:
                await self.lifecycle.act(previous, "cancel", owner)
            except Problem as problem:  # it ended meanwhile: nothing to cancel
                log.info("cancel of %s for run %s: %s", previous, run_id, problem.detail)
        origin = {"schedule_id": doc["_id"], "template_id": doc.get("template_id")}
        try:
            if doc.get("consolidation"):
                batch_id = await self._consolidate(doc, owner, run_id, run_at, depends)
            else:
                create = await self._batch_for(doc, owner, run_at, depends)
                batch_id = (await self.batches.create(create, owner, run_id, origin))[0].id
        except Problem as problem:
            record |= {"outcome": "failed", "detail": problem.detail}
            return await self._record(doc, record)
        record |= {"outcome": "created", "batch_id": batch_id}
        return await self._record(doc, record)

    async def _consolidate(
        self,
        doc: Document,
        owner: Principal,
        run_id: str,
        run_at: datetime,
        depends: Dependencies | None,
    ) -> str:
        """A run of a consolidation schedule: planned now, over the library as it is now."""
        if self.library is None:
            raise Problem(422, "Invalid request", "this API serves no template library")
        request = validate_tolerantly(ConsolidationRequest, doc["consolidation"])
        name, tag = self._run_name(doc, run_at), f"schedule:{doc['_id']}"
        request = request.model_copy(update={"name": name, "tags": [*request.tags, tag][:50]})
        origin = {"schedule_id": doc["_id"], "template_id": None}
        made, _ = await self.library.start(request, owner, run_id, origin=origin, depends=depends)
        return made.batch_id

    @staticmethod
    def _run_name(doc: Document, run_at: datetime) -> str:
        local = run_at.astimezone(ZoneInfo(doc["timezone"]))
        return f"{doc['name']} {local:%Y-%m-%d %H:%M}"

    async def _unfinished_previous(self, doc: Document, owner: Principal) -> str | None:
        previous = doc.get("last_batch_id")
        if not previous:
            return None
        try:
            found = await self.batches.load(previous, owner)
        except Problem:
            return None  # deleted meanwhile
        return None if found.status in TERMINAL else str(previous)

    async def _batch_for(
        self, doc: Document, owner: Principal, run_at: datetime, depends: Dependencies | None
    ) -> BatchCreate:
        name = self._run_name(doc, run_at)
        tag = f"schedule:{doc['_id']}"
        if doc.get("template_id"):
            template = await self.templates.load(doc["template_id"], owner)
            overrides = validate_tolerantly(Instantiate, doc.get("overrides") or {})
            create = instantiation(template, overrides)
            extra: dict[str, Any] = {
                "name": overrides.name or name,
                "tags": [*create.tags, tag][:50],
            }
        else:
            spec = validate_tolerantly(TemplateSpec, doc["spec"])
            create = BatchCreate(
                name=name,
                description=doc.get("description", ""),
                job_type=spec.job_type,
                priority=spec.priority,
                tags=spec.tags,
                items=spec.items,
                config=spec.config,
            )
            extra = {"tags": [*spec.tags, tag][:50]}
        if depends is not None:
            extra["config"] = create.config.model_copy(update={"depends_on": depends})
        return create.model_copy(update=extra)

    async def _record(self, doc: Document, record: dict[str, Any]) -> ScheduleRun:
        record["at"] = _now()
        run = ScheduleRun.model_validate(record)
        runs = [*(doc.get("runs") or []), run.model_dump()][-KEEP_RUNS:]
        changes: dict[str, Any] = {"runs": runs, "run_count": int(doc.get("run_count") or 0) + 1}
        if run.batch_id is not None:
            changes["last_batch_id"] = run.batch_id
        await self.schedules.update_one({"_id": doc["_id"]}, {"$set": changes})
        doc.update(changes)
        return run

    # ------------------------------------------------------------------ helpers
    async def _check_source(
        self, template_id: str | None, spec: TemplateSpec | None, who: Principal
    ) -> None:
        if template_id is not None:
            try:
                await self.templates.load(template_id, who)
            except Problem as exc:
                raise Problem(
                    422, "Unknown template", f"no template {template_id} you may use"
                ) from exc
        if spec is not None:
            await self.batches.validate_items(spec.job_type, spec.items or [])
            await self.batches.check_rollback_on_failure(spec.job_type, spec.config)

    async def _changeable(self, schedule_id: str, who: Principal) -> Document:
        doc = await self.load(schedule_id, who)
        if not may_change(doc, who):
            raise Problem(403, "Forbidden", "only the schedule's owner or an admin may change it")
        return doc

    async def _announce(self, doc: Document, deleted: bool = False) -> None:
        await self.publisher.publish([self._announcement(doc, deleted)])

    def _announcement(self, doc: Document, deleted: bool = False) -> Outgoing:
        event = ScheduleChanged(
            schedule_id=doc["_id"],
            cron=doc["cron"],
            timezone=doc["timezone"],
            enabled=bool(doc["enabled"]),
            deleted=deleted,
            catch_up=doc["catch_up"],
            revision=int(doc["revision"]),
        )
        env = envelope_for(event, producer=PRODUCER, tenant=doc["tenant"])
        return Outgoing(self.topics.schedules, doc["_id"], env)
