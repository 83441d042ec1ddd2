"""Live events as `text/event-stream`: one batch, or every batch of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from batch_api.api.deps import CurrentPrincipal, Live

router = APIRouter(tags=["live"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/v1/batches/{batch_id}/events", response_class=StreamingResponse)
async def batch_events(batch_id: str, who: CurrentPrincipal, live: Live) -> StreamingResponse:
    """Server-sent events of one batch: `progress`, `status`, `job_failed`, then `end` when
    the batch is terminal (the stream closes)."""
    stream = await live.batch_stream(batch_id, who)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/v1/events", response_class=StreamingResponse)
async def all_events(who: CurrentPrincipal, live: Live) -> StreamingResponse:
    """Server-sent events of every batch of the caller's tenant (the stream does not end)."""
    stream = await live.tenant_stream(who)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
