"""What each event does to the read models, as pure data: a list of guarded updates.

Guards make every update idempotent and order-safe. Batch views apply the snapshot with the
highest `seq`; job views apply the event with the highest `version` = attempt * 10 + rank.
Timestamps come from the events, never from the clock, so replaying every topic from the
beginning rebuilds identical documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.envelope import Envelope
from contracts.events import (
    BatchCreated,
    BatchSnapshot,
    Event,
    JobCompleted,
    JobFailed,
    JobRetryScheduled,
    JobStarted,
)
from contracts.topics import batch_id_of

BATCH_VIEWS = "batch_views"
JOB_VIEWS = "job_views"

_RANK = {"JobStarted": 1, "JobCompleted": 3, "JobFailed": 3, "JobRetryScheduled": 4}
# Every job event sets all of these, so the document is decided by the newest event alone.
_JOB_FIELDS = (
    "status",
    "executor",
    "started_at",
    "finished_at",
    "duration_ms",
    "output",
    "metrics",
    "error_class",
    "error_message",
    "retryable",
    "retry_at",
)


@dataclass(frozen=True)
class Write:
    """One update of one document. A guarded write applies only where the document matches
    `guard` (an older event matches nothing); the document is first created with `initial` if
    it does not exist, so the guard has something to compare with."""

    collection: str
    doc_id: str
    update: dict[str, Any]
    guard: dict[str, Any] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)


BATCH_INITIAL: dict[str, Any] = {"status": "queued", "seq": 0, "counts": {"total": 0}}
JOB_INITIAL: dict[str, Any] = {"version": 0}


def project(envelope: Envelope, event: Event) -> list[Write]:
    if isinstance(event, BatchCreated):
        return [_batch_created(envelope, event)]
    if isinstance(event, BatchSnapshot):
        return [_batch_snapshot(envelope, event)]
    if isinstance(event, JobStarted | JobCompleted | JobFailed | JobRetryScheduled):
        return _job_event(envelope, event)
    return []


def _batch_created(env: Envelope, e: BatchCreated) -> Write:
    static = {
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
    return Write(BATCH_VIEWS, e.batch_id, {"$set": static}, initial=BATCH_INITIAL)


def _batch_snapshot(env: Envelope, e: BatchSnapshot) -> Write:
    fields: dict[str, Any] = {
        "status": e.status,
        "counts": e.counts.model_dump(),
        "seq": env.seq,
        "priority_level": e.priority_level,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
        "updated_at": env.occurred_at,
        "last_event": e.TYPE,
    }
    reason = getattr(e, "reason", None)
    if reason:
        fields["reason"] = reason
    return Write(
        BATCH_VIEWS,
        e.batch_id,
        {"$set": fields},
        guard={"seq": {"$lt": env.seq}},
        initial=BATCH_INITIAL,
    )


def _job_event(
    env: Envelope, e: JobStarted | JobCompleted | JobFailed | JobRetryScheduled
) -> list[Write]:
    version = e.attempt * 10 + _RANK[e.TYPE]
    fields: dict[str, Any] = {
        "batch_id": e.batch_id,
        "tenant": env.tenant,
        "index": int(e.job_id.rsplit(".", 1)[1]),
        "attempt": e.attempt,
        "version": version,
        "updated_at": env.occurred_at,
    }
    extra: list[Write] = []
    if isinstance(e, JobStarted):
        fields |= {"status": "running", "executor": e.executor_id, "started_at": e.started_at}
    elif isinstance(e, JobCompleted):
        fields |= {
            "status": "completed",
            "executor": e.executor_id,
            "started_at": e.started_at,
            "finished_at": e.finished_at,
            "duration_ms": e.duration_ms,
            "output": e.output,
            "metrics": e.metrics,
        }
    elif isinstance(e, JobFailed):
        fields |= {
            "status": "cancelled" if e.cancelled else "failed",
            "executor": e.executor_id,
            "started_at": e.started_at,
            "finished_at": e.finished_at,
            "duration_ms": e.duration_ms,
            "error_class": e.error_class,
            "error_message": e.error_message,
            "retryable": e.retryable,
        }
        error = {
            "attempt": e.attempt,
            "error_class": e.error_class,
            "error_message": e.error_message,
            "retryable": e.retryable,
            "at": e.finished_at,
            "executor": e.executor_id,
        }
        extra.append(
            Write(
                JOB_VIEWS, e.job_id, {"$set": {f"errors.{e.attempt}": error}}, initial=JOB_INITIAL
            )
        )
    else:
        fields |= {"status": "retrying", "retry_at": e.retry_at, "error_class": e.error_class}
    for name in _JOB_FIELDS:
        fields.setdefault(name, None)
    assert batch_id_of(e.job_id) == e.batch_id
    guarded = Write(
        JOB_VIEWS,
        e.job_id,
        {"$set": fields},
        guard={"version": {"$lt": version}},
        initial=JOB_INITIAL,
    )
    return [guarded, *extra]
