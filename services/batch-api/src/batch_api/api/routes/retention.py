"""`/v1/retention`: the tenant's retention policy and its runs (admin keys only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from batch_api.api.deps import CurrentPrincipal
from batch_api.handlers.retention import RetentionService
from batch_api.retention_schemas import (
    RetentionPolicyBody,
    RetentionPolicyPublic,
    RetentionRun,
    RetentionRunBody,
)

router = APIRouter(prefix="/v1/retention", tags=["retention"])


async def retention_service(request: Request) -> RetentionService:
    service: RetentionService = request.app.state.retention
    return service


Retention = Annotated[RetentionService, Depends(retention_service)]


@router.get("", response_model=RetentionPolicyPublic)
async def get_policy(who: CurrentPrincipal, retention: Retention) -> RetentionPolicyPublic:
    """The tenant's policy (all steps off until one is set)."""
    return await retention.policy(who)


@router.put("", response_model=RetentionPolicyPublic)
async def put_policy(
    body: RetentionPolicyBody, who: CurrentPrincipal, retention: Retention
) -> RetentionPolicyPublic:
    """Replaces the policy. When `enabled`, the scheduler's leader runs it once per period
    (the first run one period after it was enabled): terminal batches finished longer ago
    than `archive_after_days` (`failed_archive_after_days` for failed and rollback_failed ones)
    are archived — their per-job records go, their report and analytics stay — and archived
    batches older than `delete_archived_after_days` are deleted. Nothing that is not terminal
    is ever touched."""
    return await retention.set_policy(body, who)


@router.post("/run", status_code=202, response_model=RetentionRun)
async def run_now(
    who: CurrentPrincipal,
    retention: Retention,
    body: RetentionRunBody | None = None,
    wait_s: Annotated[
        float, Query(ge=0, le=25, description="wait this long for the run's outcome")
    ] = 0,
) -> RetentionRun:
    """Runs the policy now (also when not enabled). `dry_run` (the default) lists what would
    be archived and deleted and changes nothing. Returns the run (`status: requested` until
    the scheduler's leader reports it, then `completed` with what it did); read it later at
    `/v1/retention/runs/{run_id}`. Every run's outcome is written to the audit log."""
    return await retention.request_run(body or RetentionRunBody(), who, wait_s)


@router.get("/runs", response_model=list[RetentionRun])
async def list_runs(who: CurrentPrincipal, retention: Retention) -> list[RetentionRun]:
    """The tenant's last 50 runs, periodic and manual, newest first."""
    return await retention.recent_runs(who)


@router.get("/runs/{run_id}", response_model=RetentionRun)
async def get_run(run_id: str, who: CurrentPrincipal, retention: Retention) -> RetentionRun:
    return await retention.run(run_id, who)
