"""Events of the scheduler: batch lifecycle (on `Topics.batch_events`, keyed by batch id, with
the envelope's `seq` set), dispatches (on `Topics.job_dispatch`, keyed by job id) and cancel
broadcasts (on `Topics.control`, read by every executor)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.base import Event
from contracts.vocabulary import ProgressCounts, ResourceLimits


class BatchSnapshot(Event):
    """Every batch lifecycle event carries the batch's status and absolute counts, so a read
    model can apply the newest one by `seq` alone, in any order and any number of times."""

    TYPE = "BatchSnapshot"
    VERSION = 3  # 2: inactive_s … skipped_from; 3: window_*, counts.awaiting_decision
    batch_id: str
    status: str
    counts: ProgressCounts
    priority_level: int = 5
    started_at: datetime | None = None
    finished_at: datetime | None = None
    waiting_for: list[str] = Field(
        default_factory=list, description="Batches this one waits for before it may start."
    )
    deadline_at_risk: bool = False
    inactive_s: float = Field(
        default=0.0,
        ge=0,
        description="Seconds since `started_at` the batch could not move, not counted in its "
        "throughput and ETA: paused (from when its last running job ended), or finished "
        "before a retry. A pause under way since `inactive_since` is not in it yet.",
    )
    inactive_since: datetime | None = Field(
        default=None, description="When the pause under way began; null while it can move."
    )
    running_done: float = Field(
        default=0.0,
        ge=0,
        description="How much of its running jobs is done, in jobs, by their own progress "
        "reports (two jobs at half way: 1.0); 0 when its jobs report no percent.",
    )
    average_job_ms: float | None = Field(
        default=None,
        ge=0,
        description="The mean run time of its jobs' attempts that ended (cancelled ones "
        "aside); null before the first.",
    )
    skipped_from: int | None = Field(
        default=None,
        ge=0,
        description="`stop_on_error` ended the jobs from this index that were never dispatched "
        "as skipped (one cancelled on request before stays cancelled); null when it did not.",
    )
    window_active_s: float | None = Field(
        default=None,
        ge=0,
        description="Where the window its recent pace is measured over begins, in seconds of "
        "its active time (see `inactive_s`): between 30 and 60 of them ago. With "
        "`window_done`, a reader's pace is (jobs done now − `window_done`) / (active time now "
        "− this). Null in the first 30 s of a run.",
    )
    window_done: float | None = Field(
        default=None,
        ge=0,
        description="Jobs ended by then, plus what its running jobs had done of themselves "
        "(as `running_done`), plus the jobs ended without running since (cancelled, or skipped "
        "by a stop): they are no pace, so the reader's difference leaves them out. Schedulers "
        "before 2026-12-08 did not add them: a window over which jobs were cancelled one by "
        "one showed a pace above the real one.",
    )


class BatchStarted(BatchSnapshot):
    TYPE = "BatchStarted"


class BatchProgress(BatchSnapshot):
    """Emitted at most a few times a second per running batch while its counts change."""

    TYPE = "BatchProgress"


class BatchPaused(BatchSnapshot):
    TYPE = "BatchPaused"


class BatchResumed(BatchSnapshot):
    TYPE = "BatchResumed"


class BatchCompleted(BatchSnapshot):
    """Every job is terminal. `outcome` is `completed` or `completed_with_errors`."""

    TYPE = "BatchCompleted"
    outcome: Literal["completed", "completed_with_errors"]


class BatchFailed(BatchSnapshot):
    TYPE = "BatchFailed"
    reason: str


class BatchCancelled(BatchSnapshot):
    TYPE = "BatchCancelled"
    reason: str = ""


class BatchRetrying(BatchSnapshot):
    """A finished batch re-runs its failed jobs."""

    TYPE = "BatchRetrying"


class BatchRollingBack(BatchSnapshot):
    """A finished batch's completed jobs are being compensated (`rollback_id`: the rollback's
    id, derived from its request's event id). Sent when the scheduler takes the request for a
    finished batch, before the rollback service planned it (its `RollbackStarted` follows on
    `rollback.events`), or on `RollbackStarted` for a batch that was running."""

    TYPE = "BatchRollingBack"
    rollback_id: str = ""


class BatchRolledBack(BatchSnapshot):
    """The rollback `rollback_id` compensated every job it planned."""

    TYPE = "BatchRolledBack"
    rollback_id: str = ""
    compensated_jobs: int = 0


class BatchRollbackFailed(BatchSnapshot):
    """The rollback `rollback_id` failed; `reason` names the jobs. The batch may be rolled back
    again."""

    TYPE = "BatchRollbackFailed"
    rollback_id: str = ""
    reason: str = ""


class BatchDeadlineAtRisk(Event):
    """Emitted once per batch: at its current throughput it would finish after `deadline`."""

    TYPE = "BatchDeadlineAtRisk"
    batch_id: str
    deadline: datetime
    predicted_finish: datetime | None = None


class BatchDeadlineMissed(Event):
    """Emitted once per batch: `deadline` passed before it finished; `action` is the batch's
    `on_deadline_missed` (continue, cancel or notify)."""

    TYPE = "BatchDeadlineMissed"
    batch_id: str
    deadline: datetime
    action: Literal["continue", "cancel", "notify"]


class JobDispatched(Event):
    """A job attempt handed to the executors. The first executor to take it runs it; the
    scheduler re-dispatches as a new attempt if no heartbeat arrives within `lease_s`."""

    TYPE = "JobDispatched"
    job_id: str
    batch_id: str
    index: int
    job_type: str
    attempt: int = Field(ge=1)
    item: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float
    lease_s: float
    dispatched_at: datetime
    resource_limits: ResourceLimits | None = None


class DispatchedJob(BaseModel):
    """One job attempt of a `JobsDispatched`: what differs from job to job."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: str
    index: int
    attempt: int = Field(ge=1)
    item: dict[str, Any]


class JobsDispatched(Event):
    """Job attempts of one batch handed to the executors in one message: each is exactly the
    `JobDispatched` made of its `jobs` entry and the fields shared here (`each()`), and the
    executor that takes the message runs every one. The scheduler sends these instead of a
    `JobDispatched` a job for a batch whose jobs lately ended within 100 ms, while every live
    executor's heartbeat says it takes them (`grouped_dispatches`), at most
    `BATCHYARD_SCHEDULER_DISPATCH_GROUP` jobs (32) each. Keyed by the first job's id."""

    TYPE = "JobsDispatched"
    batch_id: str
    job_type: str
    jobs: list[DispatchedJob] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float
    lease_s: float
    dispatched_at: datetime
    resource_limits: ResourceLimits | None = None

    def each(self) -> list[JobDispatched]:
        """The jobs as the `JobDispatched` events they stand for."""
        return [
            JobDispatched.model_construct(
                job_id=job.job_id,
                batch_id=self.batch_id,
                index=job.index,
                job_type=self.job_type,
                attempt=job.attempt,
                item=job.item,
                params=self.params,
                timeout_s=self.timeout_s,
                lease_s=self.lease_s,
                dispatched_at=self.dispatched_at,
                resource_limits=self.resource_limits,
            )
            for job in self.jobs
        ]


class JobRetryScheduled(Event):
    """Attempt `attempt` failed with a retryable error; the next runs at `retry_at`."""

    TYPE = "JobRetryScheduled"
    job_id: str
    batch_id: str
    attempt: int
    retry_at: datetime
    error_class: str = ""


class JobCancelled(Event):
    """The scheduler ended a job as cancelled (batch or job cancel)."""

    TYPE = "JobCancelled"
    job_id: str
    batch_id: str
    attempt: int = 0
    reason: str = ""


class CancelBroadcast(Event):
    """Executors stop running jobs of `batch_id` (or only `job_ids`) cooperatively."""

    TYPE = "CancelBroadcast"
    batch_id: str
    job_ids: list[str] | None = None


class ScheduleTriggered(Event):
    """The scheduler's leader fired a schedule's run (on `Topics.schedules`, keyed by schedule
    id); batch-api makes its batch. `run_id` names the run by its scheduled time, so a run
    fired again after a crash is recognised."""

    TYPE = "ScheduleTriggered"
    schedule_id: str
    run_at: datetime
    batch_id: str | None = None
    run_id: str = ""
    missed: bool = Field(default=False, description="fired late by the catch-up policy")
