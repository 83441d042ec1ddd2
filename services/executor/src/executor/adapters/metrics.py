"""The executor's Prometheus metrics: jobs started, completed, skipped and failed by job
type, their durations, and the executor's slots. Counted from what the executor publishes
(`observer`, wrapped around its publisher) and read from its state at scrape time (`track`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from contracts.events import JobCompleted, JobDispatched, JobFailed, JobSkipped
from servicekit.publisher import Outgoing

JOBS_STARTED = Counter(
    "batchyard_jobs_started_total", "Jobs an executor started, by job type", ["job_type"]
)
JOBS_COMPLETED = Counter(
    "batchyard_jobs_completed_total", "Jobs that completed, by job type", ["job_type"]
)
JOBS_SKIPPED = Counter(
    "batchyard_jobs_skipped_total",
    "Jobs their job type skipped (nothing to do for the item), by job type",
    ["job_type"],
)
JOBS_FAILED = Counter(
    "batchyard_jobs_failed_total",
    "Job attempts that failed (cancellations excluded), by job type, error class and "
    "whether the error is retryable",
    ["job_type", "error_class", "retryable"],
)
JOB_SECONDS = Histogram(
    "batchyard_job_duration_seconds",
    "Run time of job attempts, by job type and outcome (completed, skipped, failed, cancelled)",
    ["job_type", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
SLOTS = Gauge("batchyard_executor_slots", "This executor's job slots, by state", ["state"])


def count_started(dispatches: Sequence[JobDispatched]) -> None:
    """Counts jobs as they start (a short one is never announced by `JobStarted`)."""
    for dispatch in dispatches:
        JOBS_STARTED.labels(dispatch.job_type).inc()


def observer(job_type_of: Callable[[str], str | None]) -> Callable[[Sequence[Outgoing]], None]:
    """Counts job outcomes among published events; `job_type_of(job_id)` names a running
    job's type."""

    def observe(messages: Sequence[Outgoing]) -> None:
        for message in messages:
            kind, data = message.envelope.type, message.envelope.data
            if kind not in (JobCompleted.TYPE, JobFailed.TYPE, JobSkipped.TYPE):
                continue
            job_type = job_type_of(data["job_id"]) or "unknown"
            seconds = float(data.get("duration_ms") or 0) / 1000
            if kind == JobCompleted.TYPE:
                JOBS_COMPLETED.labels(job_type).inc()
                JOB_SECONDS.labels(job_type, "completed").observe(seconds)
            elif kind == JobSkipped.TYPE:
                JOBS_SKIPPED.labels(job_type).inc()
                JOB_SECONDS.labels(job_type, "skipped").observe(seconds)
            elif data.get("cancelled"):
                JOB_SECONDS.labels(job_type, "cancelled").observe(seconds)
            else:
                retryable = "true" if data.get("retryable") else "false"
                JOBS_FAILED.labels(job_type, str(data.get("error_class")), retryable).inc()
                JOB_SECONDS.labels(job_type, "failed").observe(seconds)

    return observe


def track(slots_total: Callable[[], int], slots_free: Callable[[], int]) -> None:
    """Exports the executor's slots (the latest bootstrap's, if a process has several)."""
    SLOTS.labels("total").set_function(slots_total)
    SLOTS.labels("free").set_function(slots_free)
