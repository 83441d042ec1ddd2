"""Lifecycle use cases: actions on a batch (start, pause, resume, cancel, retry, rollback,
duplicate, archive), changes to its descriptive fields, deletion.

The API refuses at once (409) what the batch's visible status does not allow, then publishes
the command on `batch.commands`; the scheduler applies it and stays the authority (a command
that arrives too late is ignored there). What the API owns itself (a draft's cancel, archive,
patch, delete) it writes to its registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batch_api.adapters.registry import BatchRegistry, live_items
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.lifecycle import (
    ActionNotAllowed,
    check_action,
    may_change_concurrency,
    may_change_config,
    may_delete,
)
from batch_api.domain.principal import Principal, Role
from batch_api.domain.sharing import may_change
from batch_api.handlers.batches import (
    CHUNK_SIZE,
    BatchService,
    Loaded,
    public_batch,
    require_jobs,
)
from batch_api.schemas import (
    MAX_BULK,
    MAX_PAGE,
    ActionAccepted,
    BatchCreate,
    BatchPublic,
    BatchUpdate,
    BulkFilter,
    BulkOutcome,
    BulkRequest,
    BulkResult,
    PlannedCompensation,
    RefusedJob,
    RollbackBody,
    RollbackCheck,
    RollbackPlan,
)
from contracts.codec import envelope_for
from contracts.envelope import deterministic_event_id
from contracts.events import (
    BatchCancelRequested,
    BatchDeleted,
    BatchPauseRequested,
    BatchResumeRequested,
    BatchRetryRequested,
    BatchUpdated,
    Event,
    RollbackRequested,
    rollback_id_of,
)
from contracts.tolerant import validate_tolerantly
from contracts.topics import Topics
from contracts.vocabulary import BatchConfig
from servicekit.buckets import view_buckets
from servicekit.files import FileStore
from servicekit.publisher import EventPublisher, Outgoing

PRODUCER = "batch-api"
MAX_PLAN_LISTED = 10_000


def conflict(exc: ActionNotAllowed) -> Problem:
    return Problem(
        409,
        "Conflict",
        f"{exc}; the batch is {exc.status}",
        kind="conflict",
        batch_status=exc.status,
    )


def require(who: Principal, role: Role = "operator") -> None:
    """A 403 problem unless the caller's key has at least `role`."""
    if not who.may(role):
        raise Problem(403, "Forbidden", f"this needs a key with the {role} role", kind="forbidden")


@dataclass
class BatchLifecycle:
    batches: BatchService
    registry: BatchRegistry
    read_models: ReadModels
    publisher: EventPublisher
    topics: Topics
    files: FileStore | None = None

    async def act(
        self, batch_id: str, action: str, who: Principal, rollback: RollbackBody | None = None
    ) -> ActionAccepted | BatchPublic:
        """Takes `action` on the batch. Returns what was accepted (202) or, for `duplicate`,
        the new batch (201). Raises a 409 problem naming the current status if the action is
        not allowed now."""
        require(who)
        found = await self.batches.load(batch_id, who)
        try:
            check_action(action, found.status)
        except ActionNotAllowed as exc:
            raise conflict(exc) from exc
        accepted = ActionAccepted(batch_id=batch_id, action=action, status=found.status)
        if action == "start":
            await self.batches.submit(batch_id, who)
        elif action == "pause":
            await self._send(found, BatchPauseRequested(batch_id=batch_id, requested_by=who.user))
        elif action == "resume":
            await self._send(found, BatchResumeRequested(batch_id=batch_id, requested_by=who.user))
        elif action == "cancel":
            await self._cancel(found, who)
        elif action == "retry":
            await self._retry(found, who)
        elif action == "rollback":
            return await self._rollback(found, who, rollback or RollbackBody(), accepted)
        elif action == "duplicate":
            return await self._duplicate(found, who)
        elif action == "archive":
            await self._archive(found)
        return accepted

    async def _archive(self, found: Loaded) -> None:
        at = datetime.now(UTC)
        if not await self.registry.set_if(
            found.doc["_id"], {"archived_at": None}, {"archived_at": at}
        ):
            raise conflict(ActionNotAllowed("batch", "archive", "archived"))
        await self.registry.drop_backups(found.doc["_id"])

    async def _send(self, found: Loaded, event: Event) -> None:
        env = envelope_for(event, producer=PRODUCER, tenant=found.doc["tenant"])
        await self.publisher.publish([Outgoing(self.topics.batch_commands, found.doc["_id"], env)])

    async def _cancel(self, found: Loaded, who: Principal) -> None:
        batch_id = found.doc["_id"]
        if found.status in ("draft", "uploading"):
            # Nothing was published: the cancel is the API's alone.
            if not await self.registry.set_if(
                batch_id,
                {"phase": found.status},
                {"phase": "cancelled", "finished_at": datetime.now(UTC)},
            ):
                raise Problem(409, "Conflict", "the batch changed meanwhile; try again")
            return
        await self._send(found, BatchCancelRequested(batch_id=batch_id, requested_by=who.user))

    async def _retry(self, found: Loaded, who: Principal) -> None:
        failed = int(((found.view or {}).get("counts") or {}).get("failed", 0))
        if failed == 0:
            raise Problem(
                409,
                "Conflict",
                f"the batch has no failed jobs to retry; the batch is {found.status}",
                kind="conflict",
                batch_status=found.status,
            )
        await self._send(
            found, BatchRetryRequested(batch_id=found.doc["_id"], requested_by=who.user)
        )

    async def _rollback(
        self, found: Loaded, who: Principal, body: RollbackBody, accepted: ActionAccepted
    ) -> ActionAccepted:
        batch_id = found.doc["_id"]
        params = (found.doc.get("config") or {}).get("params") or {}
        if params.get("backup_strategy") == "none":
            raise Problem(
                409,
                "Conflict",
                "the batch ran with backup_strategy none: nothing was recorded that could be "
                "restored",
                kind="rollback-unavailable",
                batch_status=found.status,
            )
        job_type = found.doc["job_type"]
        if await self.batches.cannot_roll_back(job_type):
            raise Problem(
                409,
                "Conflict",
                f"job type {job_type} cannot be rolled back: it defines no backup and "
                "compensation (GET /v1/job-types says which can)",
                kind="rollback-unavailable",
                batch_status=found.status,
            )
        if body.dry_run:
            plan = await self.plan_rollback(found, body.job_ids)
            check_id = await self._ask_for_check(found, who, body)
            return accepted.model_copy(
                update={"plan": plan.model_copy(update={"check_id": check_id})}
            )
        await self._send(
            found,
            RollbackRequested(
                batch_id=batch_id,
                requested_by=who.user,
                job_ids=body.job_ids,
                reason=body.reason,
                force=body.force,
            ),
        )
        return accepted

    async def _ask_for_check(self, found: Loaded, who: Principal, body: RollbackBody) -> str:
        """Has the rollback service plan the dry run as it would the rollback (checksums,
        later changes): recorded, then asked for; returns the check's id (the rollback id
        the rollback service derives from the request)."""
        batch_id = found.doc["_id"]
        event = RollbackRequested(
            batch_id=batch_id,
            requested_by=who.user,
            dry_run=True,
            job_ids=body.job_ids,
            reason=body.reason,
            force=body.force,
        )
        env = envelope_for(event, producer=PRODUCER, tenant=found.doc["tenant"])
        check_id = rollback_id_of(batch_id, env.event_id)
        await self.registry.add_check(
            {
                "_id": check_id,
                "batch_id": batch_id,
                "requested_by": who.user,
                "requested_at": env.occurred_at,
                "job_ids": body.job_ids,
                "force": body.force,
            }
        )
        await self.publisher.publish([Outgoing(self.topics.batch_commands, batch_id, env)])
        return check_id

    async def rollback_check(self, batch_id: str, check_id: str, who: Principal) -> RollbackCheck:
        """A dry run's check as far as it got; 404 for a check of another batch or none."""
        await self.batches.load(batch_id, who)  # the caller may see the batch
        asked = await self.registry.check(check_id)
        if asked is None or asked.get("batch_id") != batch_id:
            raise Problem(404, "Not Found", f"no rollback check {check_id} of batch {batch_id}")
        record = await self.read_models.check_view(check_id) or {}
        status = record.get("status")
        return RollbackCheck(
            check_id=check_id,
            batch_id=batch_id,
            status=status if status in ("clear", "refused") else "checking",
            jobs=record.get("total"),
            reason=record.get("reason"),
            refused=[RefusedJob.model_validate(r) for r in record.get("refused") or []],
            refused_total=int(record.get("refused_total") or 0),
            job_ids=asked.get("job_ids"),
            force=bool(asked.get("force")),
            requested_by=str(asked.get("requested_by") or ""),
            requested_at=asked["requested_at"],
            finished_at=record.get("finished_at") if status else None,
        )

    async def plan_rollback(self, found: Loaded, job_ids: list[str] | None) -> RollbackPlan:
        """The completed jobs (of `job_ids`, if given) in reverse completion order: the order
        in which their effects would be compensated."""
        batch_id = found.doc["_id"]
        wanted = set(job_ids) if job_ids is not None else None
        done: list[PlannedCompensation] = []
        layout = view_buckets(found.view)
        total = int(found.doc["total"])
        async for index, view in self.read_models.job_views(batch_id, layout, total):
            if view.get("status") != "completed":
                continue
            job_id = f"{batch_id}.{index}"
            if wanted is not None and job_id not in wanted:
                continue
            done.append(
                PlannedCompensation(
                    job_id=job_id,
                    index=index,
                    finished_at=view.get("finished_at"),
                    output=view.get("output"),
                )
            )
        never = datetime.min.replace(tzinfo=UTC)
        done.sort(key=lambda j: (aware(j.finished_at) or never, j.index), reverse=True)
        return RollbackPlan(
            jobs=done[:MAX_PLAN_LISTED], count=len(done), truncated=len(done) > MAX_PLAN_LISTED
        )

    async def _duplicate(self, found: Loaded, who: Principal) -> BatchPublic:
        """A new batch with the same job type, configuration and items; a draft stays a
        draft, any other batch is submitted at once."""
        require_jobs(found)  # its items went with its per-job records
        doc = found.doc
        draft = (
            found.status in ("draft", "uploading", "cancelled")
            and doc.get("phase", "submitted") != "submitted"
        )
        body = BatchCreate(
            name=f"{doc['name']} (copy)"[:200],
            description=doc.get("description", ""),
            job_type=doc["job_type"],
            priority=doc.get("priority", "medium"),
            tags=doc.get("tags", []),
            deadline=doc.get("deadline"),
            config=validate_tolerantly(BatchConfig, doc["config"]),
            draft=True,
            visibility=doc.get("visibility", "tenant"),
            shared_with=doc.get("shared_with") or [],
        )
        copy, _ = await self.batches.create(body, who, None, {"duplicate_of": doc["_id"]})
        items: list[dict[str, Any]] = []
        async for chunk in self.registry.chunks(doc["_id"], doc.get("chunks")):
            items.extend(item for _, item in live_items(chunk))
            while len(items) >= CHUNK_SIZE:
                await self.batches.add_items(copy.id, items[:CHUNK_SIZE], who, validate=False)
                items = items[CHUNK_SIZE:]
        if items:
            await self.batches.add_items(copy.id, items, who, validate=False)
        if not draft and int(doc.get("total", 0)) > 0:
            await self.batches.submit(copy.id, who)
        return await self.batches.get(copy.id, who)

    async def update(self, batch_id: str, body: BatchUpdate, who: Principal) -> BatchPublic:
        """Changes descriptive fields; `config` only before submission (409 after), its
        `max_concurrent_jobs` (the field of that name) until the batch ends."""
        require(who)
        found = await self.batches.load(batch_id, who)
        changes: dict[str, Any] = body.model_dump(exclude_unset=True, mode="python")
        concurrency = changes.pop("max_concurrent_jobs", None)
        if "max_concurrent_jobs" in body.model_fields_set:
            self._check_concurrency(found, concurrency, "config" in changes)
            changes["config.max_concurrent_jobs"] = concurrency
        if "config" in changes:
            if not may_change_config(found.status):
                raise Problem(
                    409,
                    "Conflict",
                    f"the configuration is fixed once a batch is submitted; "
                    f"the batch is {found.status}",
                    kind="conflict",
                    batch_status=found.status,
                )
            if body.config is None:
                raise Problem(422, "Invalid request", "config: may not be null")
            await self.batches.validate_dependencies(
                batch_id, who.tenant, body.config, submitting=False
            )
            await self.batches.check_rollback_on_failure(found.doc["job_type"], body.config)
            changes["config"] = body.config.model_dump(mode="json")
        sharing = "visibility" in changes or "shared_with" in changes
        if sharing and not may_change(found.doc, who):
            raise Problem(
                403,
                "Forbidden",
                "only the batch's owner or an admin may change who sees it",
                kind="forbidden",
            )
        for required in ("name", "tags", "priority", "description", "visibility", "shared_with"):
            if required in changes and changes[required] is None:
                raise Problem(422, "Invalid request", f"{required}: may not be null")
        if changes:
            changes["updated_at"] = datetime.now(UTC)
            await self.registry.set(batch_id, changes)
        if found.doc.get("phase", "submitted") == "submitted" and (
            "priority" in changes or "deadline" in changes or concurrency is not None
        ):
            # The scheduler runs it: tell it (a draft's values travel in BatchCreated).
            await self._send(
                found,
                BatchUpdated(
                    batch_id=batch_id,
                    priority=changes.get("priority"),
                    deadline=changes.get("deadline"),
                    deadline_cleared="deadline" in changes and changes["deadline"] is None,
                    max_concurrent_jobs=concurrency,
                    updated_by=who.user,
                ),
            )
        doc = {**found.doc, **changes}
        if concurrency is not None:
            doc.pop("config.max_concurrent_jobs")
            doc["config"] = {**found.doc["config"], "max_concurrent_jobs": concurrency}
        return public_batch(doc, found.view)

    @staticmethod
    def _check_concurrency(found: Loaded, concurrency: int | None, with_config: bool) -> None:
        """A 422 for a concurrency the batch cannot take, a 409 once the batch ended."""
        if concurrency is None:
            raise Problem(422, "Invalid request", "max_concurrent_jobs: may not be null")
        if with_config:
            raise Problem(
                422,
                "Invalid request",
                "give max_concurrent_jobs in config, or alone: not both",
            )
        if not may_change_concurrency(found.status):
            raise Problem(
                409,
                "Conflict",
                f"the concurrency of a batch that ended is fixed; the batch is {found.status}",
                kind="conflict",
                batch_status=found.status,
            )
        if found.doc.get("config", {}).get("execution") == "sequential":
            raise Problem(
                422,
                "Invalid request",
                "a sequential batch runs one job at a time: its concurrency cannot change",
            )

    async def bulk(self, request: BulkRequest, who: Principal) -> BulkOutcome:
        """`request.action` on each selected batch, one after another, exactly as the single
        call would do it; a batch the action does not fit is reported, not fatal."""
        require(who)
        if request.ids is not None:
            ids = list(dict.fromkeys(request.ids))
        else:
            assert request.filter is not None
            ids = await self._matching(request.filter, who)
        results: list[BulkResult] = []
        for batch_id in ids:
            try:
                if request.action == "delete":
                    await self.delete(batch_id, who)
                    results.append(BulkResult(id=batch_id, ok=True, status=204))
                else:
                    accepted = await self.act(batch_id, request.action, who)
                    status = accepted.status if isinstance(accepted, ActionAccepted) else None
                    results.append(
                        BulkResult(id=batch_id, ok=True, status=202, batch_status=status)
                    )
            except Problem as problem:
                found = problem.extra.get("batch_status")
                results.append(
                    BulkResult(
                        id=batch_id,
                        ok=False,
                        status=problem.status,
                        batch_status=found if isinstance(found, str) else None,
                        detail=problem.detail,
                    )
                )
        succeeded = sum(1 for r in results if r.ok)
        return BulkOutcome(
            action=request.action,
            matched=len(ids),
            succeeded=succeeded,
            failed=len(results) - succeeded,
            results=results,
        )

    async def _matching(self, selection: BulkFilter, who: Principal) -> list[str]:
        """Ids of the caller's batches matching `selection`; a 422 if more than a bulk
        operation may take."""
        try:
            filters = selection.filters()
        except ValueError as exc:
            raise Problem(422, "Invalid request", str(exc), kind="invalid-request") from exc
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.batches.list(who, filters, MAX_PAGE, cursor)
            ids.extend(b.id for b in page.items)
            if len(ids) > MAX_BULK:
                raise Problem(
                    422,
                    "Too many batches",
                    f"more than {MAX_BULK} batches match; narrow the filter",
                    kind="too-many-batches",
                )
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    async def delete(self, batch_id: str, who: Principal) -> None:
        """Deletes a batch in a terminal state (409 otherwise) with its stored items and
        uploaded files."""
        require(who)
        found = await self.batches.load(batch_id, who)
        if not may_delete(found.status):
            raise Problem(
                409,
                "Conflict",
                f"only a finished batch can be deleted; the batch is {found.status}",
                kind="conflict",
                batch_status=found.status,
            )
        # Announced first: the scheduler and the reporter drop what they keep of it; if what
        # follows fails, the batch is still here and a repeated delete announces it again.
        deleted = BatchDeleted(batch_id=batch_id, deleted_by=who.user)
        env = envelope_for(
            deleted,
            producer=PRODUCER,
            tenant=found.doc["tenant"],
            event_id=deterministic_event_id(batch_id, "deleted"),
        )
        await self.publisher.publish([Outgoing(self.topics.retention, batch_id, env)])
        if self.files is not None:  # its uploaded files first: a failure leaves the batch
            await self.files.delete_batch(batch_id)
        await self.registry.delete(found.doc)


def aware(at: datetime | None) -> datetime | None:
    """`at` with UTC as its zone if it has none (the store returns naive UTC times)."""
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at
