"""`/v1/batches`: create, list, read, change and delete batches; lifecycle actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response

from batch_api.api.deps import Batches, CurrentPrincipal, Lifecycle
from batch_api.domain.lifecycle import Action
from batch_api.schemas import (
    ActionAccepted,
    BatchCreate,
    BatchPage,
    BatchPublic,
    BatchUpdate,
    RollbackBody,
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
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
) -> BatchPage:
    """Batches of the caller's tenant, newest first, with cursor pagination."""
    return await batches.list(who, limit, cursor, status)


@router.get("/{batch_id}", response_model=BatchPublic)
async def get_batch(batch_id: str, who: CurrentPrincipal, batches: Batches) -> BatchPublic:
    """One batch with its progress: counts per state, percent, throughput, elapsed, ETA."""
    return await batches.get(batch_id, who)


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
