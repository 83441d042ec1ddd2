"""Commands about batches, emitted by batch-api on `Topics.batch_commands` keyed by batch id."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from contracts.envelope import deterministic_event_id
from contracts.events.base import Event
from contracts.vocabulary import BatchConfig, PriorityName


class BatchCreated(Event):
    """A batch exists, with its configuration; its items follow in `BatchItemsAdded`."""

    TYPE = "BatchCreated"
    VERSION = 2  # 2: config.execution (additive)
    batch_id: str
    name: str
    description: str = ""
    job_type: str
    priority: PriorityName | int = "medium"
    tags: list[str] = Field(default_factory=list)
    owner: str
    config: BatchConfig
    created_at: datetime
    status: str = "queued"


class BatchItemsAdded(Event):
    """One chunk of items. Chunks are numbered from 0; item `i` of chunk `c` has job index
    `first_index + i`. Re-delivery of a chunk is recognised by (batch_id, chunk)."""

    TYPE = "BatchItemsAdded"
    batch_id: str
    chunk: int = Field(ge=0)
    first_index: int = Field(ge=0)
    items: list[dict[str, Any]]


class BatchSubmitted(Event):
    """All items are in: `total_items` jobs over `chunks` chunks. The scheduler may start."""

    TYPE = "BatchSubmitted"
    batch_id: str
    total_items: int = Field(ge=1)
    chunks: int = Field(ge=1)


class BatchPauseRequested(Event):
    TYPE = "BatchPauseRequested"
    batch_id: str
    requested_by: str


class BatchResumeRequested(Event):
    TYPE = "BatchResumeRequested"
    batch_id: str
    requested_by: str


class BatchCancelRequested(Event):
    TYPE = "BatchCancelRequested"
    batch_id: str
    requested_by: str
    reason: str = ""


class BatchRetryRequested(Event):
    """Re-run the batch's failed jobs, at raised priority."""

    TYPE = "BatchRetryRequested"
    batch_id: str
    requested_by: str


class JobRetryRequested(Event):
    TYPE = "JobRetryRequested"
    batch_id: str
    job_id: str
    requested_by: str


class JobCancelRequested(Event):
    TYPE = "JobCancelRequested"
    batch_id: str
    job_id: str
    requested_by: str


class RollbackRequested(Event):
    """Undo a batch's completed jobs from their backups; `job_ids` limits it to some jobs."""

    TYPE = "RollbackRequested"
    VERSION = 2  # 2: force (additive)
    batch_id: str
    requested_by: str
    dry_run: bool = False
    job_ids: list[str] | None = None
    reason: str = ""
    force: bool = Field(
        default=False,
        description="Overwrite what changed after a job (else such a job refuses the rollback).",
    )


def rollback_id_of(batch_id: str, request_event_id: str) -> str:
    """The id of the rollback a `RollbackRequested` asks for: derived from the request's event
    id, so a redelivered request is the same rollback, and the scheduler can name it in
    `BatchRollingBack` before the rollback service has planned it."""
    return deterministic_event_id(batch_id, "rollback", request_event_id)


class BatchUpdated(Event):
    """A submitted batch's priority, deadline or concurrency changed (`PATCH`); absent fields
    stay. A `deadline` of null with `deadline_cleared` removes it."""

    TYPE = "BatchUpdated"
    VERSION = 2  # 2: max_concurrent_jobs (additive)
    batch_id: str
    priority: PriorityName | int | None = None
    deadline: datetime | None = None
    deadline_cleared: bool = False
    max_concurrent_jobs: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Its new `config.max_concurrent_jobs`, for the jobs dispatched from now on "
        "(running ones are not stopped when it is lowered).",
    )
    updated_by: str = ""


class ScheduleChanged(Event):
    """A schedule was created, changed, enabled, disabled or deleted (`deleted=True`), on
    `Topics.schedules` keyed by schedule id. The scheduler keeps the highest `revision`."""

    TYPE = "ScheduleChanged"
    schedule_id: str
    cron: str
    timezone: str = "UTC"
    enabled: bool = True
    deleted: bool = False
    catch_up: Literal["none", "latest", "all"] = Field(
        default="none", description="runs missed while no scheduler ran: see contracts.cron"
    )
    revision: int = Field(default=0, ge=0)
