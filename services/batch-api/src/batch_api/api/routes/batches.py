"""`/v1/batches`: create, list and read batches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from batch_api.api.deps import Batches, CurrentPrincipal
from batch_api.schemas import BatchCreate, BatchPage, BatchPublic

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
