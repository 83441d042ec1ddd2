"""Events of the rollback service, on `Topics.rollback_events` keyed by batch id."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contracts.events.base import Event

# How many jobs an event of a rollback lists at most (steps, refusals, invalid backups,
# failed jobs); the `..._total` fields count them all. A rollback of thousands of jobs would
# otherwise make an event larger than Kafka takes (1 MiB by default: ~6,000 steps).
LISTED_AT_MOST = 1000


class RollbackStep(BaseModel):
    """One compensation of a rollback plan: restore `backup_id` for `job_id` (a job of the
    batch, or `manual` for the batch's scope backup). Steps run in the plan's order: the
    reverse of the jobs' completion order."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    backup_id: str
    job_type: str
    completed_at: datetime | None = None


class RollbackStarted(Event):
    TYPE = "RollbackStarted"
    batch_id: str
    rollback_id: str
    dry_run: bool = False
    planned_jobs: int = 0


class BackupValidated(Event):
    TYPE = "BackupValidated"
    VERSION = 2  # 2: invalid_total (additive)
    batch_id: str
    rollback_id: str
    valid: int
    invalid: list[str] = Field(
        default_factory=list, description="Jobs whose backup is missing or corrupt (at most 1,000)."
    )
    invalid_total: int | None = Field(
        default=None, description="How many jobs' backups are invalid in all."
    )


class RollbackPlanned(Event):
    """The validated plan of a rollback; for a `dry_run` it is the whole answer (nothing is
    changed). `refusals` names every job whose backup is missing or corrupt (then the
    rollback fails without changing anything)."""

    TYPE = "RollbackPlanned"
    VERSION = 2  # 2: steps_total, refusals_total (additive)
    batch_id: str
    rollback_id: str
    dry_run: bool = False
    steps: list[RollbackStep] = Field(
        default_factory=list, description="The plan's first steps, in order (at most 1,000)."
    )
    refusals: dict[str, str] = Field(
        default_factory=dict, description="Job id → why it cannot be undone (at most 1,000)."
    )
    steps_total: int | None = Field(default=None, description="How many steps the plan has.")
    refusals_total: int | None = Field(default=None, description="How many jobs were refused.")


class RollbackProgress(Event):
    """One more job compensated (`done` of `total`)."""

    TYPE = "RollbackProgress"
    batch_id: str
    rollback_id: str
    job_id: str
    done: int
    total: int


class RollbackCompleted(Event):
    TYPE = "RollbackCompleted"
    batch_id: str
    rollback_id: str
    dry_run: bool = False
    compensated_jobs: int = 0


class RollbackFailed(Event):
    TYPE = "RollbackFailed"
    VERSION = 3  # 2: failed_jobs_total; 3: dry_run (additive)
    batch_id: str
    rollback_id: str
    reason: str
    dry_run: bool = Field(
        default=False,
        description="The rollback was a dry run: its plan was refused, nothing was to change "
        "(before version 3 a refused dry run did not say so).",
    )
    failed_jobs: dict[str, str] = Field(
        default_factory=dict, description="Job id → why it failed or was refused (at most 1,000)."
    )
    failed_jobs_total: int | None = Field(
        default=None, description="How many jobs failed or were refused in all."
    )
