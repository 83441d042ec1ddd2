"""`GET /v1/audit`: an admin reads their tenant's audit log, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from batch_api.adapters.audit import AuditLog
from batch_api.api.routes.keys import admin
from batch_api.domain.principal import Principal, Role

router = APIRouter(prefix="/v1/audit", tags=["audit"])
MAX_PAGE = 500


class AuditEntry(BaseModel):
    id: str
    at: datetime
    user: str
    key_id: str
    role: Role
    method: str
    path: str
    action: str
    resource: str | None
    status: int
    outcome: Literal["ok", "refused"]
    detail: dict[str, Any] | None = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> AuditEntry:
        return cls(id=doc["_id"], **{k: v for k, v in doc.items() if k in cls.model_fields})


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


async def audit_log(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.audit
    return log


@router.get("", response_model=AuditPage)
async def read_audit_log(
    who: Annotated[Principal, Depends(admin)],
    log: Annotated[AuditLog, Depends(audit_log)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=100, description="next_cursor of a page")
    ] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    method: Annotated[Literal["POST", "PUT", "PATCH", "DELETE"] | None, Query()] = None,
    resource: Annotated[
        str | None, Query(max_length=200, description="a batch, key, template... id")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditPage:
    """Every state-changing call of the caller's tenant (who, what, when, result), newest
    first; `next_cursor` continues after the last one returned."""
    docs = await log.find(
        who.tenant,
        user=user,
        method=method,
        resource=resource,
        since=since,
        until=until,
        limit=limit + 1,
        before_id=cursor,
    )
    page = docs[:limit]
    more = len(docs) > limit
    return AuditPage(
        items=[AuditEntry.of(d) for d in page], next_cursor=page[-1]["_id"] if more else None
    )
