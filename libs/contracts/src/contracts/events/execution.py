"""Events of the executors, on `Topics.job_events` keyed by batch id (heartbeats on
`Topics.executor_heartbeats` keyed by executor id). Every job event names its attempt: a
result from an attempt the scheduler has already replaced is ignored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import Field

from contracts.events.base import Event
from contracts.vocabulary import Severity, default_severity

MAX_TRACEBACK = 4000  # characters of a failed job's stack trace that its `JobFailed` carries
MAX_SKIP_REASON = 1000  # characters of why a job type skipped an item (`JobSkipped.reason`)
MAX_WARNINGS = 20  # warnings a job's outcome carries (`ctx.warn`); later ones are counted
MAX_WARNING_CHARS = 500  # characters of each


@dataclass
class Warnings:
    """A job's warnings as its outcome carries them: the first `MAX_WARNINGS` (each cut at
    `MAX_WARNING_CHARS`); past that the last one says how many more there were."""

    kept: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, message: str) -> None:
        if len(self.kept) < MAX_WARNINGS:
            self.kept.append(str(message)[:MAX_WARNING_CHARS])
        else:
            self.dropped += 1

    def listed(self) -> list[str]:
        if not self.dropped:
            return list(self.kept)
        more = self.dropped + 1
        return [*self.kept[: MAX_WARNINGS - 1], f"... and {more} more warnings"]


class JobStarted(Event):
    """An attempt still running a moment (20 ms by default) after it began. One that ended
    sooner is reported by its `JobCompleted` or `JobFailed` alone, which carry `started_at`."""

    TYPE = "JobStarted"
    job_id: str
    batch_id: str
    attempt: int
    executor_id: str
    started_at: datetime


class JobProgress(Event):
    """Heartbeat of a running job; renews its lease."""

    TYPE = "JobProgress"
    job_id: str
    batch_id: str
    attempt: int
    executor_id: str
    percent: float | None = None
    message: str = ""


class JobCompleted(Event):
    """`warnings` (since v2): what the job noted with `ctx.warn` while it ran, in order.
    `resources` (since v3): what a process-isolated job's worker used, `cpu_s` (user and
    system CPU seconds) and `max_rss_mb` (its peak resident memory); empty for a job run
    inside the executor's own process, whose use is not its alone."""

    TYPE = "JobCompleted"
    VERSION = 3  # 2: warnings; 3: resources (both additive)
    job_id: str
    batch_id: str
    attempt: int
    executor_id: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    output: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list, max_length=MAX_WARNINGS)
    resources: dict[str, float] = Field(default_factory=dict)


class JobSkipped(Event):
    """The job type found nothing to do for the item (already done, filtered out) and said
    so (`jobkit.SkipJob`): the job ends `skipped` with `reason`, is not retried and changed
    nothing to roll back."""

    TYPE = "JobSkipped"
    job_id: str
    batch_id: str
    attempt: int
    executor_id: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    reason: str = Field(default="", max_length=MAX_SKIP_REASON)


def output_metrics(output: object) -> dict[str, float]:
    """The metrics an output gives, as executors report them in `JobCompleted.metrics`: its
    numeric fields (not booleans) as floats."""
    if not isinstance(output, dict):
        return {}
    return {
        k: float(v)
        for k, v in output.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


class JobFailed(Event):
    """`retryable` is the handler's verdict; the scheduler decides whether attempts remain.
    `traceback`: for an exception the job did not mean to raise (not a `JobError`, a timeout
    or invalid input), where it was raised: the formatted stack trace, its last
    `MAX_TRACEBACK` characters. `severity` (since v3; None for a cancel): how bad the
    failure is, the job type's word or `default_severity`; readers of an older event derive
    it with `severity_of`. `awaiting_decision` (since v4): the job type stopped to wait for a
    person's decision (jobkit's `AwaitingDecision`): not an error of the batch, and a
    decision runs the job again."""

    TYPE = "JobFailed"
    VERSION = 4  # 2: traceback; 3: severity; 4: awaiting_decision (all additive)
    job_id: str
    batch_id: str
    attempt: int
    executor_id: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    error_class: str
    error_message: str
    retryable: bool
    cancelled: bool = False
    traceback: str | None = None
    severity: Severity | None = None
    awaiting_decision: bool = Field(
        default=False,
        description="The job waits for a person's decision on part of its work: "
        "`stop_on_error` does not stop the batch for it, and the batch's failed outcome "
        "(failure threshold, no job completed) does not count it.",
    )

    def severity_of(self) -> Severity | None:
        """The failure's severity, also for an event from before v3 (None: a cancel)."""
        if self.cancelled:
            return None
        if self.severity is not None:
            return self.severity
        return default_severity(self.retryable, crashed=self.traceback is not None)


class BackupCreated(Event):
    TYPE = "BackupCreated"
    job_id: str
    batch_id: str
    backup_id: str
    checksum: str
    size_bytes: int


class ExecutorHeartbeat(Event):
    """An executor's capacity and running jobs, every second; it renews their leases.
    Absent heartbeats mean the executor is gone."""

    TYPE = "ExecutorHeartbeat"
    # 2: process_slots_total, process_job_types; 3: grouped_dispatches; 4: process_started_at
    # (each additive)
    VERSION = 4
    executor_id: str
    slots_total: int
    slots_free: int
    running: int
    job_types: list[str]
    sent_at: datetime
    running_jobs: dict[str, int] = Field(
        default_factory=dict,
        description="job id → attempt of every job running here or holding for a free slot",
    )
    process_slots_total: int | None = Field(
        default=None,
        description="of `slots_total`, how many jobs of process-isolated job types may run at "
        "once (each takes a worker process); absent: as many as `slots_total`",
    )
    process_job_types: list[str] = Field(
        default_factory=list,
        description="the job types hosted here that run each job in a worker process",
    )
    grouped_dispatches: bool = Field(
        default=False,
        description="this executor takes `JobsDispatched` (many jobs in one message); the "
        "scheduler sends them only while every live executor does. Absent: an executor from "
        "before that event, which knows only `JobDispatched`",
    )
    process_started_at: datetime | None = Field(
        default=None,
        description="when the process sending this heartbeat started. A later value under the "
        "same `executor_id` means the executor was restarted: the jobs its previous process "
        "held and this one does not list are lost, and the scheduler dispatches them again at "
        "once instead of when their leases run out. Absent: an executor from before v4",
    )
