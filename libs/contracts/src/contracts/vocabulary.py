"""Shared vocabulary of the public contracts: states, priorities and the batch configuration
carried by `BatchCreated`. HTTP request schemas live in batch-api; these are the event shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BatchStatus = Literal[
    "draft",
    "uploading",
    "queued",
    "running",
    "paused",
    "completed",
    "completed_with_errors",
    "failed",
    "cancelled",
    "retrying",
    "rolling_back",
    "rolled_back",
    "rollback_failed",
    "archived",
]
TERMINAL_BATCH_STATUSES: frozenset[str] = frozenset(
    {"completed", "completed_with_errors", "failed", "cancelled", "rolled_back", "rollback_failed"}
)

JobStatus = Literal[
    "pending", "dispatched", "running", "completed", "failed", "retrying", "skipped", "cancelled"
]
TERMINAL_JOB_STATUSES: frozenset[str] = frozenset({"completed", "failed", "skipped", "cancelled"})

PriorityName = Literal["low", "medium", "high", "critical"]

# How bad a failed attempt is. A job type may say (`JobError(..., severity=...)`); else
# `default_severity`: `critical` for an exception the job did not mean to raise (a bug) or a
# worker that crashed, `high` for a permanent failure, `medium` for a retryable one. `low`
# only when a job type says so.
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


def default_severity(retryable: bool, crashed: bool = False) -> Severity:
    """A failure's severity when its job type did not give one."""
    if crashed:
        return "critical"
    return "medium" if retryable else "high"


PRIORITY_LEVELS: dict[str, int] = {"low": 2, "medium": 5, "high": 8, "critical": 10}


def priority_level(priority: PriorityName | int) -> int:
    """Normalise a named priority or a 1–10 number to 1–10."""
    if isinstance(priority, int):
        if not 1 <= priority <= 10:
            raise ValueError("priority must be between 1 and 10")
        return priority
    return PRIORITY_LEVELS[priority]


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter; only retryable error classes are retried."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts per job, the first one included."
    )
    backoff_initial_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="The longest wait before the first retry; each retry waits between half "
        "its ceiling and the ceiling, so many jobs' retries do not arrive together.",
    )
    backoff_max_s: float = Field(
        default=60.0, ge=0, le=86400, description="The ceiling never grows beyond this."
    )
    multiplier: float = Field(
        default=2.0, ge=1, le=10, description="The ceiling grows by this after each failure."
    )


class Stagger(BaseModel):
    """Spreads job starts: while fewer than `ramp_up_jobs` jobs have started (every job when
    0), at most one starts every `start_interval_ms`, across all executors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_interval_ms: int = Field(ge=1, le=3_600_000)
    ramp_up_jobs: int = Field(default=0, ge=0)


class Dependencies(BaseModel):
    """The batch stays `queued` until every batch in `batches` has ended: `completed` (only a
    fully successful end counts; any other end cancels this batch) or `finished` (any end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batches: list[str] = Field(min_length=1, max_length=100)
    on: Literal["completed", "finished"] = "completed"


class ResourceLimits(BaseModel):
    """Limits on each job attempt of a batch; each one unset means no limit.

    - `timeout_s`: a hard wall-clock limit per attempt, for every job type. Exceeding it fails
      the job with the permanent `ResourceLimitExceeded` (limit `time`); it is not retried.
      The batch's `timeout_s` is the softer attempt timeout (the retryable `JobTimeout`); the
      smaller of the two applies, and when they are equal the hard limit wins.
    - `max_memory_mb`: address space the job may add to its worker process, and `max_cpu_s`:
      CPU seconds the worker may use. The OS enforces both (rlimits), so they apply only to
      job types that declare `isolation = "process"`; other job types ignore them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float | None = Field(default=None, gt=0, le=86400)
    max_memory_mb: int | None = Field(default=None, ge=1, le=1_048_576)
    max_cpu_s: int | None = Field(default=None, ge=1, le=86400)


def http_url(url: str) -> str:
    """`url` if it is an absolute http:// or https:// URL; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return url


# What a webhook notice is about: its `event` and `X-Batchyard-Event` (docs/api.md, "Webhooks").
WebhookEvent = Literal[
    "batch.started",
    "batch.progress",
    "batch.error",
    "batch.finished",
    "batch.deadline_at_risk",
    "batch.deadline_missed",
]


class Webhook(BaseModel):
    """Where to tell another system about a batch: an HTTP POST of a JSON notice to `url`,
    signed with the tenant's webhook secret (see `GET /v1/webhooks/secret`) and retried with
    backoff. Private and loopback targets are refused unless the operator allow-lists them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="An http:// or https:// URL.")
    on_start: bool = Field(default=False, description="When the batch starts running.")
    on_complete: bool = Field(
        default=True,
        description="When it finishes (completed, with errors, failed, cancelled) and when a "
        "rollback of it ends.",
    )
    on_error: bool = Field(
        default=True,
        description="At its first failed job, when the batch fails, and when its deadline is "
        "at risk or missed (not when `on_deadline_missed` is `continue`).",
    )
    progress_every_percent: int | None = Field(
        default=None, ge=1, le=99, description="Every time progress crosses a multiple of this."
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        return http_url(url)


class BatchConfig(BaseModel):
    """How a batch runs. Carried in `BatchCreated`; fixed once the batch starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution: Literal["parallel", "sequential"] = Field(
        default="parallel",
        description="`sequential`: one job at a time, in item order; a job's retries come "
        "before the next job, which starts only once the one before has ended for good "
        "(`max_concurrent_jobs` is then 1). With `stop_on_error` the jobs after a failed one "
        "are `skipped`.",
    )
    max_concurrent_jobs: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Jobs of this batch running at once, overall (1 when `sequential`).",
    )
    retry: RetryPolicy = Field(
        default=RetryPolicy(),
        description="Retries of failed attempts that may pass (timeouts, 5xx, ...); a "
        "permanent failure is not retried.",
    )
    timeout_s: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="Seconds an attempt may run; past it the attempt fails with the "
        "retryable `JobTimeout`.",
    )
    stop_on_error: bool = Field(
        default=False,
        description="The first job that fails for good stops the batch: nothing more is "
        "started (the jobs not started yet are `skipped`; a retry of the batch runs them), "
        "running jobs are cancelled, and the batch ends `failed`.",
    )
    failure_threshold: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Once every job has ended, the batch is `failed` when the share of its "
        "jobs that failed is above this, or when some failed and none completed; else "
        "`completed_with_errors` if any failed. At 1.0 (the default) a batch with a completed "
        "job is `failed` only by `stop_on_error`; at 0 any failed job makes it `failed`.",
    )
    rollback_on_failure: bool = Field(
        default=False,
        description="Roll the batch back when it ends `failed` with some jobs completed "
        "(job types that support rollback only).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Given to every job as its context's `params`; `defaults` fills item "
        "fields an item leaves out.",
    )
    stagger: Stagger | None = None
    depends_on: Dependencies | None = None
    deadline: datetime | None = Field(
        default=None,
        description="When the batch should be finished; its priority rises as this nears.",
    )
    on_deadline_missed: Literal["continue", "cancel", "notify"] = Field(
        default="notify",
        description="When `deadline` passes with jobs left, `BatchDeadlineMissed` is sent; "
        "`notify` also tells the batch's webhooks (those `on_error`), `cancel` tells them and "
        "cancels the batch, `continue` does neither.",
    )
    resource_limits: ResourceLimits | None = Field(
        default=None,
        description="Per-attempt limits: wall clock for every job type; memory and CPU for "
        "job types isolated in a worker process.",
    )
    notifications: list[Webhook] = Field(
        default_factory=list, max_length=5, description="Webhooks told about this batch."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_at_a_time_when_sequential(cls, data: Any) -> Any:
        """A sequential batch runs one job at a time whatever `max_concurrent_jobs` says, so
        the configuration shown says so too (a duplicate of a parallel batch's configuration
        switched to sequential keeps its 50, and is not refused for it)."""
        if isinstance(data, dict) and data.get("execution") == "sequential":
            return {**data, "max_concurrent_jobs": 1}
        return data


class ProgressCounts(BaseModel):
    """Absolute job counts of a batch at one sequence number."""

    model_config = ConfigDict(frozen=True)

    total: int = 0
    pending: int = 0
    dispatched: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    cancelled: int = 0
    awaiting_decision: int = Field(
        default=0,
        ge=0,
        description="Of `failed`, the jobs that wait for a person's decision (since "
        "`BatchSnapshot` v3): no errors of the batch; a decision runs them again.",
    )

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.skipped + self.cancelled
