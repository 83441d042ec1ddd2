"""What events do to the read models, as pure functions.

Batch views apply the snapshot with the highest `seq`. Job views apply the event with the
highest `version` = attempt * 10 + rank, and every job event carries all of a view's fields,
so a view is decided by its newest event alone; failures of every attempt are kept in
`errors`. Timestamps come from the events, never from the clock, so replaying every topic from
the beginning, in any order and any number of times, rebuilds identical documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope
from contracts.events import (
    BackupCreated,
    BackupValidated,
    BatchCreated,
    BatchItemsAdded,
    BatchProgress,
    BatchReportReady,
    BatchRollingBack,
    BatchSnapshot,
    Event,
    ExecutorHeartbeat,
    JobCancelled,
    JobCompleted,
    JobDispatched,
    JobFailed,
    JobProgress,
    JobRetryScheduled,
    JobSkipped,
    JobStarted,
    RollbackCompleted,
    RollbackFailed,
    RollbackProgress,
    RollbackStarted,
)
from servicekit.buckets import JOB_VIEW_SIZE, SIZE_FIELD
from servicekit.jobviews import NULLABLE

JobEvent = JobStarted | JobCompleted | JobSkipped | JobFailed | JobRetryScheduled | JobCancelled
JOB_EVENTS = (JobStarted, JobCompleted, JobSkipped, JobFailed, JobRetryScheduled, JobCancelled)
NOT_LOGGED = (
    BatchProgress,
    BatchItemsAdded,
    BackupCreated,
    BackupValidated,
    BatchReportReady,
    ExecutorHeartbeat,
    JobDispatched,
    JobProgress,
    # one per compensated job: the log would grow with the batch (a rollback of 100,000 jobs,
    # 100,000 entries rewritten on every flush); each job's view records it instead
    RollbackProgress,
    *JOB_EVENTS,
)
# A view's fields when it is created; `job_bucket_size` never changes afterwards.
BATCH_INITIAL: dict[str, Any] = {
    "status": "queued",
    "seq": 0,
    "counts": {"total": 0},
    SIZE_FIELD: JOB_VIEW_SIZE,
}

# JobCancelled ends an attempt that was waiting to be retried or whose executor vanished.
_RANK = {
    "JobStarted": 1,
    "JobCompleted": 3,
    "JobSkipped": 3,
    "JobFailed": 3,
    "JobRetryScheduled": 4,
    "JobCancelled": 5,
}


def batch_static(env: Envelope, e: BatchCreated) -> dict[str, Any]:
    """Fields of a batch view that never change after creation."""
    return {
        "tenant": env.tenant,
        "name": e.name,
        "description": e.description,
        "job_type": e.job_type,
        "priority": e.priority,
        "tags": e.tags,
        "owner": e.owner,
        "config": e.config.model_dump(mode="json"),
        "created_at": e.created_at,
    }


ROLLBACK_EVENTS = (
    BatchRollingBack,
    RollbackStarted,
    RollbackProgress,
    RollbackCompleted,
    RollbackFailed,
)
RollbackEvent = (
    BatchRollingBack | RollbackStarted | RollbackProgress | RollbackCompleted | RollbackFailed
)
CHECK_EVENTS = (RollbackStarted, RollbackCompleted, RollbackFailed)  # a dry run's
Operators = dict[str, dict[str, Any]]  # an update's operators: {"$set": {path: value}, ...}


# How many of a refused dry run's jobs its check names (the rest counted).
CHECK_REFUSALS_KEPT = 20


def is_check(e: RollbackEvent) -> bool:
    """Whether the event is about a dry run (a check): kept apart from the batch's
    rollbacks. A refused dry run's `RollbackFailed` from before version 3 does not say so."""
    return bool(getattr(e, "dry_run", False))


def rollback_operators(env: Envelope, e: RollbackEvent) -> Operators:
    """What a rollback event records in its batch's view, under `rollbacks.<rollback id>`:
    `started_at` (the earliest announcement: the scheduler's `BatchRollingBack` when the
    request found the batch finished, before the rollback service planned it), `total` (once
    planned), `done` (the highest count), and once it ended `status`, `reason` and
    `finished_at` (the earliest). As update operators that leave the same document in any
    order and any number of times (the rollback service announces again when a request is
    redelivered). Dry runs are checks (`check_operators`); a refused one's `RollbackFailed`
    from before version 3 leaves a record without `started_at`, which readers skip."""
    at = f"rollbacks.{e.rollback_id}"
    if isinstance(e, BatchRollingBack):
        return {"$min": {f"{at}.started_at": env.occurred_at}} if e.rollback_id else {}
    if isinstance(e, RollbackStarted):
        return {
            "$min": {f"{at}.started_at": env.occurred_at},
            "$set": {f"{at}.total": e.planned_jobs},
        }
    if isinstance(e, RollbackProgress):
        return {"$max": {f"{at}.done": e.done}, "$set": {f"{at}.total": e.total}}
    if isinstance(e, RollbackCompleted):
        return {
            "$max": {f"{at}.done": e.compensated_jobs},
            "$min": {f"{at}.finished_at": env.occurred_at},
            "$set": {f"{at}.status": "rolled_back", f"{at}.reason": None},
        }
    return {
        "$min": {f"{at}.finished_at": env.occurred_at},
        "$set": {f"{at}.status": "rollback_failed", f"{at}.reason": e.reason},
    }


def check_operators(
    env: Envelope, e: RollbackStarted | RollbackCompleted | RollbackFailed
) -> Operators:
    """What a dry run's event records in its check's document (`rollback_check_views`, by
    rollback id): `batch_id`, `started_at`, `total` (the jobs the rollback would restore),
    and once it ended `status` `clear`, or `refused` with the `reason`, the first
    `CHECK_REFUSALS_KEPT` refused jobs (`refused`: job id and why) and `refused_total`, and
    `finished_at`. In any order and any number of times, as `rollback_operators`."""
    sets: dict[str, Any] = {"batch_id": e.batch_id}
    if isinstance(e, RollbackStarted):
        return {"$min": {"started_at": env.occurred_at}, "$set": sets | {"total": e.planned_jobs}}
    if isinstance(e, RollbackCompleted):
        sets |= {"status": "clear", "reason": None}
    else:
        refused = [
            {"job_id": job_id, "reason": why}
            for job_id, why in list(e.failed_jobs.items())[:CHECK_REFUSALS_KEPT]
        ]
        total = e.failed_jobs_total if e.failed_jobs_total is not None else len(e.failed_jobs)
        sets |= {"status": "refused", "reason": e.reason, "refused": refused}
        sets["refused_total"] = total
    return {"$min": {"finished_at": env.occurred_at}, "$set": sets}


def merge_operators(into: Operators, more: Operators) -> Operators:
    """Two updates as one: the higher `$max`, the lower `$min`, the later `$set`."""
    for op, fields in more.items():
        mine = into.setdefault(op, {})
        for path, value in fields.items():
            if path in mine and op == "$max":
                value = max(mine[path], value)
            elif path in mine and op == "$min":
                value = min(mine[path], value)
            mine[path] = value
    return into


def batch_dynamic(env: Envelope, e: BatchSnapshot) -> dict[str, Any]:
    """Fields of a batch view that a snapshot sets (with its `seq`)."""
    fields: dict[str, Any] = {
        "status": e.status,
        "counts": e.counts.model_dump(),
        "seq": env.seq,
        "priority_level": e.priority_level,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
        "updated_at": env.occurred_at,
        "last_event": e.TYPE,
        "reason": getattr(e, "reason", None),
        "waiting_for": e.waiting_for,
        "deadline_at_risk": e.deadline_at_risk,
        "inactive_s": e.inactive_s,
        "inactive_since": e.inactive_since,
        "running_done": e.running_done,
        "average_job_ms": e.average_job_ms,
        "window_active_s": e.window_active_s,
        "window_done": e.window_done,
    }
    if env.schema_version >= 2:
        # a scheduler from before version 2 does not say where skipped jobs begin: readers
        # then guess from the counts, as they did (not told "none were skipped")
        fields["skipped_from"] = e.skipped_from
    return fields


def job_version(e: JobEvent) -> int:
    return e.attempt * 10 + _RANK[e.TYPE]


def fold_attempt(attempts: dict[str, Any], e: JobEvent) -> dict[str, Any]:
    """Per-attempt records (`"<n>"` → executor, started_at, finished_at, status, error),
    merged field by field so they come out the same in any order: a finished attempt stays
    finished when its `JobStarted` arrives late. Scheduler events (`JobRetryScheduled`,
    `JobCancelled`) are no executor's attempt and add none."""
    if isinstance(e, JobRetryScheduled | JobCancelled):
        return attempts
    record = dict(attempts.get(str(e.attempt)) or {"attempt": e.attempt, "status": "running"})
    record |= {"executor": e.executor_id, "started_at": e.started_at}
    if isinstance(e, JobCompleted):
        record |= {"status": "completed", "finished_at": e.finished_at, "error": None}
    elif isinstance(e, JobSkipped):
        record |= {"status": "skipped", "finished_at": e.finished_at, "error": None}
    elif isinstance(e, JobFailed):
        record |= {
            "status": "cancelled" if e.cancelled else "failed",
            "finished_at": e.finished_at,
            "error": {
                "class": e.error_class,
                "message": e.error_message,
                "retryable": e.retryable,
            },
        }
    return {**attempts, str(e.attempt): record}


def fold_job(view: dict[str, Any] | None, env: Envelope, e: JobEvent) -> dict[str, Any]:
    """The job view after `e`. An older event only adds its failure to `errors`."""
    current = view or {"version": 0, "errors": {}}
    errors = dict(current.get("errors") or {})
    if isinstance(e, JobFailed):
        errors[str(e.attempt)] = {
            "attempt": e.attempt,
            "error_class": e.error_class,
            "error_message": e.error_message,
            "retryable": e.retryable,
            "at": e.finished_at,
            "executor": e.executor_id,
        }
        if e.traceback is not None:
            errors[str(e.attempt)]["traceback"] = e.traceback
        severity = e.severity_of()
        if severity is not None:
            errors[str(e.attempt)]["severity"] = severity
        if e.awaiting_decision:  # parked for a person, not an error of the batch
            errors[str(e.attempt)]["awaiting_decision"] = True
    attempts = fold_attempt(current.get("attempts") or {}, e)
    version = job_version(e)
    if version <= current.get("version", 0):
        return {**current, "errors": errors, "attempts": attempts}
    fields = _decided(e.job_id, e.attempt, version, env, errors, attempts)
    if isinstance(e, JobStarted):
        fields |= {"status": "running", "executor": e.executor_id, "started_at": e.started_at}
        if current.get("attempt") == e.attempt and "progress" in current:
            fields["progress"] = current["progress"]  # reported before it was announced
    elif isinstance(e, JobCompleted):
        fields |= _ran(e) | {
            "status": "completed",
            "output": e.output,
            "metrics": e.metrics,
            "warnings": e.warnings or None,
            "resources": e.resources or None,
        }
    elif isinstance(e, JobSkipped):
        fields |= _ran(e) | {"status": "skipped", "skip_reason": e.reason}
    elif isinstance(e, JobFailed):
        fields |= _ran(e) | {
            "status": "cancelled" if e.cancelled else "failed",
            "error_class": e.error_class,
            "error_message": e.error_message,
            "retryable": e.retryable,
        }
    elif isinstance(e, JobCancelled):
        # Decided by the event alone (no fields kept from the current view), so any order of
        # replay gives the same document; the failures before it stay in `errors`.
        fields |= {"status": "cancelled", "error_message": e.reason}
    else:
        fields |= {"status": "retrying", "retry_at": e.retry_at, "error_class": e.error_class}
    return fields


def _ran(e: JobCompleted | JobSkipped | JobFailed) -> dict[str, Any]:
    """Where and when an attempt that ended ran."""
    return {
        "executor": e.executor_id,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
        "duration_ms": e.duration_ms,
    }


def _decided(
    job_id: str,
    attempt: int,
    version: int,
    env: Envelope,
    errors: dict[str, Any],
    attempts: dict[str, Any],
) -> dict[str, Any]:
    """The fields of a job view that its newest event decides, before that event's own: every
    `NULLABLE` field unset, so nothing of an older event stays."""
    return {
        **dict.fromkeys(NULLABLE),
        "job_id": job_id,
        "index": int(job_id.rsplit(".", 1)[1]),
        "attempt": attempt,
        "version": version,
        "updated_at": env.occurred_at,
        "errors": errors,
        "attempts": attempts,
    }


def fold_progress(view: dict[str, Any] | None, env: Envelope, e: JobProgress) -> dict[str, Any]:
    """The job view with a running attempt's latest progress report (`progress`: percent,
    message, at). A report of an attempt that already ended, or of an older attempt, changes
    nothing; the attempt's outcome folds into a view without it. A report that comes before
    its attempt's `JobStarted` (a job reporting within the executor's start notice) makes the
    running view itself, one version below `JobStarted`'s, which still sets `started_at`; so
    any order of an attempt's events gives the same view."""
    progress = {"percent": e.percent, "message": e.message, "at": env.occurred_at}
    current = view or {"version": 0, "errors": {}}
    version = e.attempt * 10
    if version > current.get("version", 0):
        errors, attempts = current.get("errors") or {}, current.get("attempts") or {}
        fields = _decided(e.job_id, e.attempt, version, env, errors, attempts)
        return {**fields, "status": "running", "executor": e.executor_id, "progress": progress}
    running = current.get("attempt") == e.attempt and current.get("status") == "running"
    if not running:
        return current
    kept = current.get("progress")
    if kept is not None and _utc(kept["at"]) > _utc(env.occurred_at):
        return current
    return {**current, "progress": progress}


def _utc(at: datetime) -> datetime:
    """The store gives datetimes back without their zone (they are UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def fold_compensation(
    view: dict[str, Any] | None, env: Envelope, e: RollbackProgress
) -> dict[str, Any] | None:
    """The job view once a rollback compensated the job: it keeps its run (status, output)
    and says when it was rolled back and by which rollback; None if the job has no view.
    A later run of the job (a newer job event) folds into a view without these fields."""
    if view is None:
        return None
    return {**view, "rolled_back_at": env.occurred_at, "rollback_id": e.rollback_id}


# The per-batch event log: what happened to a batch as a whole (commands and who sent them,
# state changes, deadlines, rollbacks). Progress updates and job events are left out: the
# first are frequent and carry nothing new, the second have their own views (attempts).
_LOGGED_FIELDS = (
    "status",
    "outcome",
    "requested_by",
    "reason",
    "job_id",
    "job_ids",
    "rollback_id",
    "dry_run",
    "compensated_jobs",
    "priority",
    "deadline",
    "action",
)


def log_entry(env: Envelope, event: Event) -> dict[str, Any] | None:
    """The batch log's entry for `event`, or None if it is not logged."""
    if isinstance(event, NOT_LOGGED) or not hasattr(event, "batch_id"):
        return None
    data = event.model_dump(mode="json", include=set(_LOGGED_FIELDS))
    entry: dict[str, Any] = {
        "type": event.TYPE,
        "at": env.occurred_at,
        # the store keeps milliseconds: the rest orders events stamped in the same one
        "at_us": env.occurred_at.microsecond,
        "producer": env.producer,
        "seq": env.seq,
    }
    entry |= {k: v for k, v in data.items() if v not in (None, [], "")}
    return entry
