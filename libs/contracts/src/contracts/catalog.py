"""Which service sends which event on which topic: the source of the AsyncAPI document.

Every message on a topic is an `Envelope` whose `type` names the event and whose `data` is the
event's body. A test checks that every event has a route and that every route's topic exists."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.events import (
    BackupCreated,
    BackupValidated,
    BatchArchived,
    BatchArchiveRecorded,
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchDeadlineAtRisk,
    BatchDeadlineMissed,
    BatchDeleted,
    BatchFailed,
    BatchItemsAdded,
    BatchPaused,
    BatchPauseRequested,
    BatchProgress,
    BatchPurged,
    BatchReportReady,
    BatchResumed,
    BatchResumeRequested,
    BatchRetrying,
    BatchRetryRequested,
    BatchRollbackFailed,
    BatchRolledBack,
    BatchRollingBack,
    BatchSnapshot,
    BatchStarted,
    BatchSubmitted,
    BatchUpdated,
    CancelBroadcast,
    Event,
    ExecutorHeartbeat,
    JobCancelled,
    JobCancelRequested,
    JobCompleted,
    JobDispatched,
    JobFailed,
    JobProgress,
    JobRetryRequested,
    JobRetryScheduled,
    JobsDispatched,
    JobSkipped,
    JobStarted,
    RetentionPolicyChanged,
    RetentionRunCompleted,
    RetentionRunRequested,
    RollbackCompleted,
    RollbackFailed,
    RollbackPlanned,
    RollbackProgress,
    RollbackRequested,
    RollbackStarted,
    ScheduleChanged,
    ScheduleTriggered,
)


@dataclass(frozen=True)
class Route:
    event: type[Event]
    topic: str  # an attribute of `contracts.topics.Topics`
    producers: tuple[str, ...]


def _routes(topic: str, producers: tuple[str, ...], *events: type[Event]) -> list[Route]:
    return [Route(event, topic, producers) for event in events]


ROUTES: tuple[Route, ...] = (
    *_routes(
        "batch_commands",
        ("batch-api",),
        BatchCreated,
        BatchItemsAdded,
        BatchSubmitted,
        BatchUpdated,
        BatchPauseRequested,
        BatchResumeRequested,
        BatchCancelRequested,
        BatchRetryRequested,
        JobRetryRequested,
        JobCancelRequested,
    ),
    *_routes("batch_commands", ("batch-api", "scheduler"), RollbackRequested),
    *_routes("schedules", ("batch-api",), ScheduleChanged),
    *_routes("schedules", ("scheduler",), ScheduleTriggered),
    *_routes(
        "batch_events",
        ("scheduler",),
        BatchStarted,
        BatchProgress,
        BatchPaused,
        BatchResumed,
        BatchCompleted,
        BatchFailed,
        BatchCancelled,
        BatchRetrying,
        BatchRollingBack,
        BatchRolledBack,
        BatchRollbackFailed,
        BatchDeadlineAtRisk,
        BatchDeadlineMissed,
    ),
    *_routes("job_dispatch", ("scheduler",), JobDispatched, JobsDispatched),
    *_routes("control", ("scheduler",), CancelBroadcast),
    *_routes("job_events", ("scheduler",), JobRetryScheduled, JobCancelled),
    *_routes(
        "job_events",
        ("executor",),
        JobStarted,
        JobProgress,
        JobCompleted,
        JobFailed,
        JobSkipped,
        BackupCreated,
    ),
    *_routes("executor_heartbeats", ("executor",), ExecutorHeartbeat),
    *_routes(
        "rollback_events",
        ("rollback",),
        RollbackStarted,
        BackupValidated,
        RollbackPlanned,
        RollbackProgress,
        RollbackCompleted,
        RollbackFailed,
    ),
    *_routes("reports", ("reporter",), BatchReportReady),
    *_routes(
        "retention",
        ("batch-api",),
        RetentionPolicyChanged,
        RetentionRunRequested,
        BatchArchiveRecorded,
        BatchDeleted,
    ),
    *_routes("retention", ("scheduler",), BatchArchived, BatchPurged, RetentionRunCompleted),
)

# Base classes that are never sent themselves.
ABSTRACT: tuple[type[Event], ...] = (BatchSnapshot,)
