"""Jobs of a batch: list (by status, paginated by job index), get (attempts, errors, output,
timings, item), retry and cancel.

Job views live in the reporter's buckets (`servicekit.buckets`) and are read by `_id`, bucket
by bucket; a listing reads the buckets of at most `MAX_JOBS_PER_PAGE` jobs per request and then
returns a cursor to continue, so a filter that matches few jobs of a huge batch stays bounded
per call.
Items come from the API's own upload chunks."""

from __future__ import annotations

import base64
import bisect
from dataclasses import dataclass, field
from typing import Any

import orjson

from batch_api.adapters.registry import BatchRegistry
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.lifecycle import (
    ACTIVE,
    JOB_CANCEL_FROM,
    JOB_RETRY_FROM,
    SKIPPING,
    job_status_of,
)
from batch_api.domain.principal import Principal
from batch_api.domain.report import (
    AWAITING_DECISION,
    awaits_decision,
    severity_of,
    skip_reason_of,
)
from batch_api.handlers.batches import CHUNK_SIZE, BatchService, Loaded, require_jobs
from batch_api.schemas import JobActionAccepted, JobAttempt, JobError, JobPage, JobPublic
from contracts.codec import envelope_for
from contracts.events import Event, JobCancelRequested, JobRetryRequested
from contracts.topics import Topics
from servicekit.buckets import view_buckets
from servicekit.publisher import EventPublisher, Outgoing

MAX_JOBS_PER_PAGE = 20_000


@dataclass
class ItemReader:
    """Items of one batch by job index, reading each upload chunk once."""

    registry: BatchRegistry
    doc: dict[str, Any]
    _starts: list[tuple[int, int]] = field(default_factory=list)
    _chunks: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        first = self.doc.get("chunk_first") or {}
        if first:
            self._starts = sorted((int(v), int(k)) for k, v in first.items())
        else:  # batches stored before chunk layouts were recorded: chunks of CHUNK_SIZE
            total = int(self.doc.get("total") or 0)
            self._starts = [(s, c) for c, s in enumerate(range(0, total, CHUNK_SIZE))]

    async def item(self, index: int) -> dict[str, Any] | None:
        pos = bisect.bisect_right(self._starts, (index, 1 << 62)) - 1
        if pos < 0:
            return None
        first, chunk = self._starts[pos]
        if chunk not in self._chunks:
            doc = await self.registry.chunk(self.doc["_id"], chunk)
            self._chunks[chunk] = (doc or {}).get("items") or []
            if len(self._chunks) > 8:
                self._chunks.pop(next(iter(self._chunks)))
        items = self._chunks[chunk]
        offset = index - first
        return items[offset] if 0 <= offset < len(items) else None


def public_job(
    batch_id: str, index: int, view: dict[str, Any] | None, status: str, item: dict[str, Any] | None
) -> JobPublic:
    """The HTTP shape of a job from its view (None: never started)."""
    view = view or {}
    errors = view.get("errors") or {}
    error = None
    if view.get("error_class") and status in ("failed", "cancelled", "retrying"):
        latest = errors.get(str(view.get("attempt"))) or {}
        error = JobError(
            class_=view["error_class"],
            message=view.get("error_message") or "",
            retryable=view.get("retryable"),
            traceback=latest.get("traceback"),
            severity=severity_of(latest) if latest else None,
        )
    attempts = [
        JobAttempt(
            attempt=a["attempt"],
            executor=a.get("executor"),
            started_at=a.get("started_at"),
            finished_at=a.get("finished_at"),
            status=a.get("status", "running"),
            error=JobError(
                **{"class": a["error"]["class"]},
                **_rest(a["error"]),
                severity=severity_of(errors[key]) if key in errors else None,
            )
            if a.get("error")
            else None,
        )
        for key, a in sorted((view.get("attempts") or {}).items(), key=lambda kv: int(kv[0]))
    ]
    duration_ms = view.get("duration_ms")
    return JobPublic(
        id=f"{batch_id}.{index}",
        batch_id=batch_id,
        index=index,
        status=status,
        attempt=int(view.get("attempt") or 0),
        item=item,
        output=view.get("output"),
        metrics=view.get("metrics"),
        error=error,
        attempts=attempts,
        started_at=view.get("started_at"),
        finished_at=view.get("finished_at"),
        duration_s=round(duration_ms / 1000, 6) if duration_ms is not None else None,
        progress=view.get("progress") if status == "running" else None,
        warnings=list(view.get("warnings") or []) if status == "completed" else [],
        resources=view.get("resources") if status == "completed" else None,
        skip_reason=skip_reason_of(view, status),
        rolled_back_at=view.get("rolled_back_at"),
        awaiting_decision=awaits_decision(view, status),
    )


def _rest(error: dict[str, Any]) -> dict[str, Any]:
    return {"message": error.get("message") or "", "retryable": error.get("retryable")}


@dataclass
class JobService:
    batches: BatchService
    registry: BatchRegistry
    read_models: ReadModels
    publisher: EventPublisher
    topics: Topics

    async def list(
        self,
        batch_id: str,
        who: Principal,
        statuses: set[str] | None,
        limit: int,
        cursor: str | None,
    ) -> JobPage:
        """Jobs in index order from the cursor, those in `statuses` if given."""
        found = await self.batches.load(batch_id, who)
        require_jobs(found)
        total = int(found.doc.get("total") or 0)
        start = _decode_cursor(cursor) if cursor else 0
        underlying = underlying_status(found)
        items = ItemReader(self.registry, found.doc)
        page: list[JobPublic] = []
        index = start
        layout = view_buckets(found.view)
        buckets = 0
        while index < total and len(page) < limit and buckets * layout.size < MAX_JOBS_PER_PAGE:
            bucket, _ = layout.of(index)
            views = await self.read_models.job_bucket(batch_id, layout, bucket)
            buckets += 1
            end = layout.indexes(bucket, total).stop
            while index < end and len(page) < limit:
                view = views.get(layout.of(index)[1])
                status = job_status(found, index, view, underlying)
                if (
                    statuses is None
                    or status in statuses
                    or (AWAITING_DECISION in statuses and awaits_decision(view, status))
                ):
                    page.append(public_job(batch_id, index, view, status, await items.item(index)))
                index += 1
        next_cursor = _encode_cursor(index) if index < total else None
        return JobPage(items=page, next_cursor=next_cursor)

    async def get(self, batch_id: str, job_id: str, who: Principal) -> JobPublic:
        found, index, view, status = await self._job(batch_id, job_id, who)
        item = await ItemReader(self.registry, found.doc).item(index)
        return public_job(batch_id, index, view, status, item)

    async def retry(self, batch_id: str, job_id: str, who: Principal) -> JobActionAccepted:
        """Re-runs a failed job (the batch re-opens as `retrying`); 409 for any other job."""
        _require_operator(who)
        found, _, _, status = await self._job(batch_id, job_id, who)
        if status not in JOB_RETRY_FROM or found.status == "archived":
            raise _conflict("retry", status, found.status)
        event = JobRetryRequested(batch_id=batch_id, job_id=job_id, requested_by=who.user)
        await self._send(found, event)
        return JobActionAccepted(batch_id=batch_id, job_id=job_id, action="retry", status=status)

    async def cancel(self, batch_id: str, job_id: str, who: Principal) -> JobActionAccepted:
        """Cancels a job that has not finished, in a batch that is still active."""
        _require_operator(who)
        found, index, view, status = await self._job(batch_id, job_id, who)
        if status not in JOB_CANCEL_FROM or found.status not in ACTIVE:
            raise _conflict("cancel", status, found.status)
        if view is None:
            # Never started: the scheduler ends it without any job event, so the API keeps
            # the request to show the job cancelled.
            await self.registry.set(batch_id, {f"cancelled_jobs.{index}": True})
        event = JobCancelRequested(batch_id=batch_id, job_id=job_id, requested_by=who.user)
        await self._send(found, event)
        return JobActionAccepted(batch_id=batch_id, job_id=job_id, action="cancel", status=status)

    async def _job(
        self, batch_id: str, job_id: str, who: Principal
    ) -> tuple[Loaded, int, dict[str, Any] | None, str]:
        found = await self.batches.load(batch_id, who)
        require_jobs(found)
        prefix, _, number = job_id.rpartition(".")
        total = int(found.doc.get("total") or 0)
        if prefix != batch_id or not number.isdigit() or int(number) >= total:
            raise Problem(404, "Not found", f"no job {job_id} in batch {batch_id}")
        index = int(number)
        layout = view_buckets(found.view)
        bucket, key = layout.of(index)
        view = (await self.read_models.job_bucket(batch_id, layout, bucket)).get(key)
        return found, index, view, job_status(found, index, view)

    async def _send(self, found: Loaded, event: Event) -> None:
        env = envelope_for(event, producer="batch-api", tenant=found.doc["tenant"])
        await self.publisher.publish([Outgoing(self.topics.batch_commands, found.doc["_id"], env)])


def job_status(
    found: Loaded, index: int, view: dict[str, Any] | None, underlying: str | None = None
) -> str:
    if view is None and str(index) in (found.doc.get("cancelled_jobs") or {}):
        return "cancelled"
    batch_status = underlying or underlying_status(found)
    return job_status_of(view, batch_status, view is None and _skipped(found, index, batch_status))


def _skipped(found: Loaded, index: int, batch_status: str) -> bool:
    """Whether `stop_on_error` skipped the job at `index` (which never started)."""
    batch_view = found.view or {}
    if "skipped_from" in batch_view:
        start = batch_view["skipped_from"]
        return start is not None and index >= int(start)
    # a view from before snapshots said where: any skipped job, in a batch that could have
    # skipped some, makes the jobs that never started read skipped
    return bool((batch_view.get("counts") or {}).get("skipped")) and batch_status in SKIPPING


def underlying_status(found: Loaded) -> str:
    """The batch's run status, also for an archived batch."""
    return str((found.view or {}).get("status") or found.status)


def _require_operator(who: Principal) -> None:
    if not who.may("operator"):
        raise Problem(403, "Forbidden", "this needs a key with the operator role", kind="forbidden")


def _conflict(action: str, job_status: str, batch_status: str) -> Problem:
    return Problem(
        409,
        "Conflict",
        f"cannot {action} a job that is {job_status} in a batch that is {batch_status}",
        kind="conflict",
        job_status=job_status,
        batch_status=batch_status,
    )


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"from": index})).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = int(orjson.loads(base64.urlsafe_b64decode(padded))["from"])
    except Exception as exc:
        raise Problem(400, "Invalid cursor", "the cursor is not one this API returned") from exc
    if value < 0:
        raise Problem(400, "Invalid cursor", "the cursor is not one this API returned")
    return value
