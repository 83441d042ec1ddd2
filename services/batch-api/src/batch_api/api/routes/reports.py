"""`/v1/batches/{batch_id}/report`, `/analytics` and `/export`: a batch's summary (JSON or
CSV), how it ran, and a ZIP of everything about it; and `/v1/stats` across batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from batch_api.api.deps import CurrentPrincipal
from batch_api.api.problems import Problem
from batch_api.handlers.lifecycle import aware
from batch_api.handlers.reports import ReportService
from batch_api.report_schemas import BatchAnalytics, BatchReport, Stats

router = APIRouter(prefix="/v1/batches/{batch_id}", tags=["reports"])
stats_router = APIRouter(prefix="/v1/stats", tags=["reports"])
MAX_WINDOW = timedelta(days=366)


async def report_service(request: Request) -> ReportService:
    service: ReportService = request.app.state.reports
    return service


Reports = Annotated[ReportService, Depends(report_service)]


@router.get(
    "/report",
    response_model=BatchReport,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON summary, or CSV rows"}},
)
async def get_report(
    batch_id: str,
    request: Request,
    who: CurrentPrincipal,
    reports: Reports,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> BatchReport | StreamingResponse:
    """JSON: totals per job state, success_rate, avg/p50/p95 duration_s, metric totals and
    the first 1,000 failed jobs (`failed_count` counts all). CSV (`?format=csv` or `Accept:
    text/csv`): a header line, then one line per job."""
    found = await reports.load(batch_id, who)
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        reports.require_jobs(found)
        reports.check_export_size(found, "CSV report")
        return StreamingResponse(
            reports.csv_lines(found),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{batch_id}-jobs.csv"'},
        )
    return await reports.report(found)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "a ZIP archive"}},
)
async def export_batch(batch_id: str, who: CurrentPrincipal, reports: Reports) -> StreamingResponse:
    """A ZIP with batch.json, jobs.csv, report.json and events.jsonl, written as it streams.
    A batch with more jobs than the deployment's export cap is a 422."""
    found = await reports.load(batch_id, who)
    reports.require_jobs(found)
    reports.check_export_size(found, "ZIP export")
    return StreamingResponse(
        reports.export_zip(found),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.zip"'},
    )


@router.get("/analytics", response_model=BatchAnalytics)
async def get_analytics(batch_id: str, who: CurrentPrincipal, reports: Reports) -> BatchAnalytics:
    """Duration percentiles of finished jobs, a throughput timeline (at most 60 buckets from
    the start to the end, or now), failed attempts by error class, and retries."""
    return await reports.analytics(await reports.load(batch_id, who))


@stats_router.get("", response_model=Stats)
async def get_stats(
    who: CurrentPrincipal,
    reports: Reports,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Stats:
    """The caller's tenant's batches created in [since, until) (default: the last 24 hours):
    counts by status, jobs completed/failed/cancelled/skipped, success rate and throughput
    (finished jobs over the window's length), overall and per job type."""
    end = aware(until) or datetime.now(UTC)
    start = aware(since) or end - timedelta(days=1)
    if start >= end:
        raise Problem(422, "Invalid request", "`since` must be before `until`")
    if end - start > MAX_WINDOW:
        raise Problem(422, "Invalid request", "the window may be at most 366 days")
    return await reports.stats(who, start, end)
