"""HTTP shape of `GET /v1/batches/{id}/report` (also the export's report.json)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FailedJob(BaseModel):
    job_id: str
    index: int
    attempt: int
    error_class: str | None
    error_message: str | None


class BatchReport(BaseModel):
    """A batch's summary over all its jobs."""

    batch_id: str
    name: str
    status: str
    job_type: str
    generated_at: datetime
    totals: dict[str, int] = Field(description="`total` and a count per job state present")
    success_rate: float | None = Field(description="completed / (completed + failed)")
    avg_duration_s: float | None
    p50_duration_s: float | None
    p95_duration_s: float | None
    metrics: dict[str, float] = Field(
        description="per metric, the sum over completed jobs' numeric metrics"
    )
    failed_jobs: list[FailedJob] = Field(description="the first 1,000 failed jobs")
    failed_count: int
    failed_truncated: bool
