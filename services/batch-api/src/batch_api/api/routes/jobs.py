"""`/v1/batches/{batch_id}/jobs`: the jobs of a batch; retry and cancel one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from batch_api.api.deps import CurrentPrincipal, Jobs
from batch_api.api.problems import Problem
from batch_api.domain.report import AWAITING_DECISION
from batch_api.schemas import MAX_PAGE, JobActionAccepted, JobPage, JobPublic
from contracts.vocabulary import JobStatus

router = APIRouter(prefix="/v1/batches/{batch_id}/jobs", tags=["jobs"])
JOB_STATUSES: tuple[str, ...] = JobStatus.__args__  # type: ignore[attr-defined]
FILTERS = (*JOB_STATUSES, AWAITING_DECISION)


@router.get("", response_model=JobPage)
async def list_jobs(
    batch_id: str,
    who: CurrentPrincipal,
    jobs: Jobs,
    status: Annotated[
        str | None,
        Query(
            max_length=200,
            description="one status or several, comma-separated; `awaiting_decision`: the "
            "failed jobs that wait for a person's decision",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """Jobs in index order. A page may hold fewer than `limit` jobs while `next_cursor` is
    set: a filtered listing reads a bounded part of a large batch per request."""
    statuses = {s.strip() for s in status.split(",") if s.strip()} if status else None
    unknown = sorted((statuses or set()) - set(FILTERS))
    if unknown:
        raise Problem(
            422,
            "Invalid request",
            f"status {unknown[0]!r} is not one of {', '.join(FILTERS)}",
            kind="invalid-request",
        )
    return await jobs.list(batch_id, who, statuses, limit, cursor)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(batch_id: str, job_id: str, who: CurrentPrincipal, jobs: Jobs) -> JobPublic:
    """One job with its item, output, error and every attempt."""
    return await jobs.get(batch_id, job_id, who)


@router.post("/{job_id}/retry", status_code=202, response_model=JobActionAccepted)
async def retry_job(
    batch_id: str, job_id: str, who: CurrentPrincipal, jobs: Jobs
) -> JobActionAccepted:
    """Re-run a failed job; 409 for a job that is not failed."""
    return await jobs.retry(batch_id, job_id, who)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobActionAccepted)
async def cancel_job(
    batch_id: str, job_id: str, who: CurrentPrincipal, jobs: Jobs
) -> JobActionAccepted:
    """Cancel a job that has not finished; 409 otherwise."""
    return await jobs.cancel(batch_id, job_id, who)
