"""HTTP shape of `GET /v1/batches/{id}/report` (also the export's report.json)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from contracts.vocabulary import Severity


class FailedJob(BaseModel):
    job_id: str
    index: int
    attempt: int
    error_class: str | None
    error_message: str | None


class ReportResources(BaseModel):
    jobs_measured: int = Field(description="completed jobs whose worker process was measured")
    cpu_s: float = Field(description="their CPU seconds (user and system), summed")
    max_rss_mb: float | None = Field(description="the largest of their peak resident memory")


class JobWarning(BaseModel):
    """One warning a completed job noted (`ctx.warn`)."""

    job_id: str
    index: int
    message: str


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
    warned_jobs: int = Field(default=0, description="completed jobs that noted warnings")
    warnings: list[JobWarning] = Field(
        default_factory=list, description="the first 1,000 warnings, in job order"
    )
    warnings_count: int = 0
    warnings_truncated: bool = False
    resources: ReportResources | None = Field(
        default=None,
        description="What the workers of process-isolated completed jobs used (null when "
        "no job ran in a worker process)",
    )


class DurationStats(BaseModel):
    """Durations of finished (completed or failed) jobs' last attempts, in seconds."""

    count: int
    min_s: float | None
    avg_s: float | None
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None


class ThroughputPoint(BaseModel):
    at: datetime = Field(description="start of the bucket")
    completed: int
    failed: int
    awaiting_decision: int = Field(
        default=0, description="of `failed`, the jobs waiting for a person's decision"
    )
    jobs_per_s: float


class Throughput(BaseModel):
    bucket_s: int | None = Field(description="width of each bucket; null before any finish")
    points: list[ThroughputPoint]


class ErrorCount(BaseModel):
    error_class: str
    count: int = Field(description="failed attempts with this class (retried ones included)")
    retryable: int = Field(description="how many of them were retryable")
    severity: Severity | None = Field(
        default=None,
        description="the worst severity among them (null in analytics kept from before)",
    )


class Retries(BaseModel):
    attempts: int = Field(description="attempts made, all jobs together")
    retried_jobs: int = Field(description="jobs that needed more than one attempt")
    extra_attempts: int = Field(description="attempts beyond each job's first")


class BatchAnalytics(BaseModel):
    """How a batch ran: durations, throughput over time, errors by class, retries."""

    batch_id: str
    status: str
    generated_at: datetime
    durations: DurationStats
    throughput: Throughput
    errors: list[ErrorCount] = Field(description="most frequent first")
    severities: dict[Severity, int] = Field(
        default_factory=dict,
        description="failed attempts by severity (low, medium, high, critical)",
    )
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="per metric, the sum over the jobs completed so far (as in the report)",
    )
    retries: Retries


class TypeStats(BaseModel):
    batches: int
    jobs_completed: int
    jobs_failed: int
    jobs_cancelled: int
    jobs_skipped: int
    success_rate: float | None = Field(description="completed / (completed + failed)")
    jobs_per_s: float | None = Field(description="finished jobs / the window's length")


class Stats(TypeStats):
    """The caller's tenant's batches created in [since, until), with their jobs."""

    since: datetime
    until: datetime
    batches_by_status: dict[str, int]
    job_types: dict[str, TypeStats]
