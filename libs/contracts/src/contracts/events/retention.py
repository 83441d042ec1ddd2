"""Retention: a tenant's policy, its runs, and what each run did to a batch, on
`Topics.retention`.

Policies and run requests come from batch-api (keyed by tenant); the scheduler's leader
evaluates them and announces each batch it archives or purges (keyed by batch id) and each
run's outcome (keyed by tenant); batch-api announces a batch a user deleted
(`BatchDeleted`). Every owner of per-batch data acts on `BatchArchived`, `BatchPurged` and
`BatchDeleted` itself, idempotently; nothing deletes another service's collections (backups
aside: docs/architecture.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from contracts.events.base import Event


class RetentionPolicyChanged(Event):
    """A tenant's retention policy, whole (`revision` rises with every change; the scheduler
    keeps the highest). Ages are in days, fractions allowed; a batch's age counts from when it
    finished (archiving) or was archived (deletion). `None` switches that step off."""

    TYPE = "RetentionPolicyChanged"
    enabled: bool = False
    archive_after_days: float | None = None
    failed_archive_after_days: float | None = Field(
        default=None, description="for failed and rollback_failed batches; else archive_after"
    )
    delete_archived_after_days: float | None = None
    revision: int = Field(default=0, ge=0)


class RetentionRunRequested(Event):
    """An admin asked for a run now (`dry_run`: report what would happen, change nothing)."""

    TYPE = "RetentionRunRequested"
    run_id: str
    dry_run: bool = True
    requested_by: str = ""


class BatchArchived(Event):
    """Retention archived a terminal batch: its per-job documents go, its summary and report
    stay. Keyed by batch id."""

    TYPE = "BatchArchived"
    batch_id: str
    run_id: str
    status: str = Field(description="the terminal status it had")
    finished_at: datetime | None = None
    archived_at: datetime


class BatchArchiveRecorded(Event):
    """batch-api recorded a `BatchArchived` and kept the batch's report and analytics: the
    per-job read models may go now. From batch-api, keyed by batch id."""

    TYPE = "BatchArchiveRecorded"
    batch_id: str
    run_id: str = ""


class BatchPurged(Event):
    """Retention deleted an archived batch: every document about it goes. Keyed by batch id."""

    TYPE = "BatchPurged"
    batch_id: str
    run_id: str
    archived_at: datetime | None = None


class BatchDeleted(Event):
    """batch-api deleted a finished batch at a user's request (not by a retention run): every
    service drops what it keeps of it, as for `BatchPurged`. From batch-api, keyed by batch
    id; sent before batch-api deletes its own records, so a delete that fails half-way is
    repeated whole."""

    TYPE = "BatchDeleted"
    batch_id: str
    deleted_by: str = ""


class RetentionRunCompleted(Event):
    """One retention run of a tenant ended (`dry_run`: nothing was changed; the ids say what
    would have been). Lists are capped; the counts are exact."""

    TYPE = "RetentionRunCompleted"
    run_id: str
    dry_run: bool
    trigger: Literal["schedule", "manual"]
    requested_by: str = ""
    started_at: datetime
    finished_at: datetime
    archived: int = 0
    deleted: int = 0
    archived_ids: list[str] = Field(default_factory=list)
    deleted_ids: list[str] = Field(default_factory=list)
    skipped_non_terminal: int = Field(
        default=0, description="batches of the tenant that were not terminal, left alone"
    )
    error: str | None = None
