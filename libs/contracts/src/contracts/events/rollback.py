"""Events of the rollback service, on `Topics.rollback_events` keyed by batch id."""

from __future__ import annotations

from pydantic import Field

from contracts.events.base import Event


class RollbackStarted(Event):
    TYPE = "RollbackStarted"
    batch_id: str
    rollback_id: str
    dry_run: bool = False
    planned_jobs: int = 0


class BackupValidated(Event):
    TYPE = "BackupValidated"
    batch_id: str
    rollback_id: str
    valid: int
    invalid: list[str] = Field(default_factory=list)


class RollbackCompleted(Event):
    TYPE = "RollbackCompleted"
    batch_id: str
    rollback_id: str
    dry_run: bool = False
    compensated_jobs: int = 0


class RollbackFailed(Event):
    TYPE = "RollbackFailed"
    batch_id: str
    rollback_id: str
    reason: str
    failed_jobs: dict[str, str] = Field(default_factory=dict)
