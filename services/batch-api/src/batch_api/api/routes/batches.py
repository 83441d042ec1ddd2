"""`/v1/batches`: create, list, read, change and delete batches; lifecycle actions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response

from batch_api.api.deps import Batches, CurrentPrincipal, Files, Lifecycle
from batch_api.api.problems import Problem
from batch_api.api.uploads import is_multipart, parse_items, read_files
from batch_api.domain.lifecycle import Action
from batch_api.schemas import (
    MAX_PAGE,
    ActionAccepted,
    BatchCreate,
    BatchFilters,
    BatchPage,
    BatchPublic,
    BatchUpdate,
    BulkOutcome,
    BulkRequest,
    ItemsAdded,
    RollbackBody,
    RollbackCheck,
)

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", status_code=201, response_model=BatchPublic)
async def create_batch(
    body: BatchCreate,
    who: CurrentPrincipal,
    batches: Batches,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BatchPublic:
    """Create a batch from inline items (up to 10,000) and submit it."""
    batch, created = await batches.create(body, who, idempotency_key)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/batches/{batch.id}"
    return batch


@router.get("", response_model=BatchPage)
async def list_batches(
    who: CurrentPrincipal,
    batches: Batches,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    status: Annotated[
        str | None, Query(max_length=400, description="one status or several, comma-separated")
    ] = None,
    priority: Annotated[str | None, Query(max_length=20)] = None,
    job_type: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the name")] = None,
    template_id: Annotated[
        str | None, Query(max_length=100, description="made from this batch template")
    ] = None,
    schedule_id: Annotated[
        str | None, Query(max_length=100, description="made by this schedule's runs")
    ] = None,
) -> BatchPage:
    """Batches of the caller's tenant, newest first, filtered, with cursor pagination
    (`limit` up to 500)."""
    try:
        filters = BatchFilters.from_query(
            status=status,
            priority=priority,
            job_type=job_type,
            tag=tag,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
            q=q,
            template_id=template_id,
            schedule_id=schedule_id,
        )
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), kind="invalid-request") from exc
    return await batches.list(who, filters, limit, cursor)


@router.post("/bulk", response_model=BulkOutcome)
async def bulk_action(
    body: BulkRequest, who: CurrentPrincipal, lifecycle: Lifecycle
) -> BulkOutcome:
    """cancel, retry, archive, delete, pause or resume many batches: by `ids` or by `filter`
    (as in a listing; at most 1,000 batches, 422 if more match). Each batch is treated as
    the single call would treat it; `results` says per batch what happened (its `status` is
    the single call's HTTP status, e.g. 409 with the batch's status when the action does
    not fit). Always 200 once the request itself is valid."""
    return await lifecycle.bulk(body, who)


@router.post(
    "/{batch_id}/items",
    status_code=202,
    response_model=ItemsAdded,
    response_model_exclude_none=True,
)
async def add_items(
    batch_id: str,
    request: Request,
    who: CurrentPrincipal,
    batches: Batches,
    uploads: Files,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ItemsAdded:
    """Add items to a draft (or uploading) batch: `application/x-ndjson`, one JSON object per
    line, or JSON `{"items": [...]}`; up to 10,000 items per request, any number of
    requests. Or upload files (`multipart/form-data`, one or more file parts): each file is
    stored and becomes one item `{file_id, filename, size, content_type}` (for
    `files.extract_metadata`); 413 if a file or the request is over its cap. The batch
    becomes `uploading`; 409 once it was submitted."""
    content_type = request.headers.get("content-type", "")
    if is_multipart(content_type):
        await uploads.check(batch_id, who, state=not idempotency_key)  # before the body
        form, files = await read_files(request, uploads.max_files)
        try:
            return await uploads.upload(batch_id, files, who, idempotency_key)
        finally:
            await form.close()
    items = parse_items(content_type, await request.body())
    return await batches.upload(batch_id, items, who, idempotency_key)


@router.post("/{batch_id}/submit", status_code=202, response_model=BatchPublic)
async def submit_batch(batch_id: str, who: CurrentPrincipal, batches: Batches) -> BatchPublic:
    """Submit a draft or uploading batch: it becomes `queued`. 409 if it was submitted
    already, 422 if it holds no items."""
    return await batches.submit(batch_id, who)


@router.get("/{batch_id}", response_model=BatchPublic)
async def get_batch(batch_id: str, who: CurrentPrincipal, batches: Batches) -> BatchPublic:
    """One batch with its progress: counts per state, percent, throughput, elapsed, ETA."""
    return await batches.get(batch_id, who)


@router.get("/{batch_id}/rollback-checks/{check_id}", response_model=RollbackCheck)
async def get_rollback_check(
    batch_id: str, check_id: str, who: CurrentPrincipal, lifecycle: Lifecycle
) -> RollbackCheck:
    """A rollback dry run's check (`plan.check_id` of the dry run's answer): `checking`
    until the rollback service has planned it, then `clear` with the jobs it would restore,
    or `refused` with the reason and the jobs (a corrupt backup, a change made after a job,
    unless `force`). 404 for an unknown check."""
    return await lifecycle.rollback_check(batch_id, check_id, who)


@router.patch("/{batch_id}", response_model=BatchPublic)
async def update_batch(
    batch_id: str, body: BatchUpdate, who: CurrentPrincipal, lifecycle: Lifecycle
) -> BatchPublic:
    """Change name, description, tags, priority or deadline; `config` only before the batch
    is submitted (409 after)."""
    return await lifecycle.update(batch_id, body, who)


@router.delete("/{batch_id}", status_code=204)
async def delete_batch(batch_id: str, who: CurrentPrincipal, lifecycle: Lifecycle) -> Response:
    """Delete a batch in a terminal state (completed, completed_with_errors, failed,
    cancelled, rolled_back, rollback_failed, archived); 409 otherwise."""
    await lifecycle.delete(batch_id, who)
    return Response(status_code=204)


@router.post(
    "/{batch_id}/actions/{action}",
    status_code=202,
    response_model=ActionAccepted | BatchPublic,
    responses={201: {"model": BatchPublic, "description": "duplicate: the new batch"}},
)
async def act_on_batch(
    batch_id: str,
    action: Action,
    who: CurrentPrincipal,
    lifecycle: Lifecycle,
    response: Response,
    body: Annotated[RollbackBody | None, Body()] = None,
) -> ActionAccepted | BatchPublic:
    """start (submit a draft), pause, resume, cancel, retry (failed jobs), rollback (body
    `{dry_run, job_ids}`; a dry run returns the `plan`), duplicate (201 with the new batch),
    archive. 409 with the current status if the action is not allowed now."""
    result = await lifecycle.act(batch_id, action, who, body)
    if isinstance(result, BatchPublic):
        response.status_code = 201
        response.headers["Location"] = f"/v1/batches/{result.id}"
    return result
