"""`/v1/batches/{batch_id}/report` and `/export`: a batch's summary (JSON or CSV) and a ZIP
of everything about it, both streamed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from batch_api.api.deps import CurrentPrincipal
from batch_api.handlers.reports import ReportService
from batch_api.report_schemas import BatchReport

router = APIRouter(prefix="/v1/batches/{batch_id}", tags=["reports"])


def report_service(request: Request) -> ReportService:
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
    """A ZIP with batch.json, jobs.csv, report.json and events.jsonl, written as it streams."""
    found = await reports.load(batch_id, who)
    return StreamingResponse(
        reports.export_zip(found),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.zip"'},
    )
