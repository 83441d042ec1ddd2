"""Which batches a retention policy archives or deletes now: a pure function of the policy,
the tenant's batches and the time.

Only terminal batches are ever chosen: completed, completed_with_errors, failed, cancelled,
rolled_back, rollback_failed (to archive, by how long ago they finished) and archived ones (to
delete, by how long ago they were archived). A batch whose rollback was asked for and has not
ended is rolling back, not terminal, and is left alone like every queued, running, paused,
retrying, draft or uploading batch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, overload

from contracts.vocabulary import TERMINAL_BATCH_STATUSES
from scheduler.domain.states import can_batch

FAILED_STATUSES: Final = frozenset({"failed", "rollback_failed"})


@dataclass(frozen=True)
class RetentionPolicy:
    """Ages in days (fractions allowed); `None` switches that step off."""

    enabled: bool = False
    archive_after_days: float | None = None
    failed_archive_after_days: float | None = None
    delete_archived_after_days: float | None = None

    def archive_after(self, status: str) -> timedelta | None:
        days = self.archive_after_days
        if status in FAILED_STATUSES and self.failed_archive_after_days is not None:
            days = self.failed_archive_after_days
        return None if days is None else timedelta(days=days)

    def delete_after(self) -> timedelta | None:
        days = self.delete_archived_after_days
        return None if days is None else timedelta(days=days)


@dataclass(frozen=True)
class BatchAge:
    """What retention needs to know of one batch (from the scheduler's batch document)."""

    batch_id: str
    status: str
    finished_at: datetime | None = None
    archived_at: datetime | None = None
    rollback_requested_at: datetime | None = None
    rollback_finished_at: datetime | None = None
    rollback_outcome: str | None = None

    @property
    def rolling_back(self) -> bool:
        requested, finished = self.rollback_requested_at, self.rollback_finished_at
        return requested is not None and (finished is None or finished < requested)

    @property
    def effective_status(self) -> str:
        """The status seen by users: a finished rollback's outcome, `rolling_back` while one
        runs, else the scheduler's."""
        if self.status == "archived":
            return "archived"
        if self.rolling_back:
            return "rolling_back"
        if self.rollback_outcome is not None and self.rollback_finished_at is not None:
            return self.rollback_outcome
        return self.status

    @property
    def ended_at(self) -> datetime | None:
        """When it last stopped changing: its finish or its rollback's end, the later."""
        times = [t for t in (self.finished_at, self.rollback_finished_at) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True)
class RetentionPlan:
    archive: tuple[BatchAge, ...]
    delete: tuple[BatchAge, ...]
    left_alone: int
    """batches that are not terminal (never touched)"""
    more: bool
    """eligible batches beyond this run's limit, left for the next run"""


def archive_due(policy: RetentionPolicy, batch: BatchAge, now: datetime) -> bool:
    status = batch.effective_status
    if status not in TERMINAL_BATCH_STATUSES or not can_batch(status, "archive"):
        return False
    if batch.ended_at is None:
        return False
    after = policy.archive_after(status)
    return after is not None and now - aware(batch.ended_at) >= after


def delete_due(policy: RetentionPolicy, batch: BatchAge, now: datetime) -> bool:
    after = policy.delete_after()
    return (
        batch.effective_status == "archived"
        and batch.archived_at is not None
        and after is not None
        and now - aware(batch.archived_at) >= after
    )


def plan_retention(
    policy: RetentionPolicy, batches: Iterable[BatchAge], now: datetime, limit: int
) -> RetentionPlan:
    """The batches to archive and to delete now, oldest first, at most `limit` in all
    (deletions first: they free the most)."""
    archive: list[BatchAge] = []
    delete: list[BatchAge] = []
    left_alone = 0
    for batch in batches:
        status = batch.effective_status
        if status not in TERMINAL_BATCH_STATUSES and status != "archived":
            left_alone += 1
        elif delete_due(policy, batch, now):
            delete.append(batch)
        elif archive_due(policy, batch, now):
            archive.append(batch)
    never = datetime.min.replace(tzinfo=UTC)
    delete.sort(key=lambda b: (aware(b.archived_at) or never, b.batch_id))
    archive.sort(key=lambda b: (aware(b.ended_at) or never, b.batch_id))
    chosen_delete = delete[:limit]
    chosen_archive = archive[: max(0, limit - len(chosen_delete))]
    return RetentionPlan(
        archive=tuple(chosen_archive),
        delete=tuple(chosen_delete),
        left_alone=left_alone,
        more=len(delete) + len(archive) > len(chosen_delete) + len(chosen_archive),
    )


def batch_age(doc: dict[str, Any]) -> BatchAge:
    return BatchAge(
        batch_id=str(doc["_id"]),
        status=str(doc.get("status")),
        finished_at=aware(doc.get("finished_at")),
        archived_at=aware(doc.get("archived_at")),
        rollback_requested_at=aware(doc.get("rollback_requested_at")),
        rollback_finished_at=aware(doc.get("rollback_finished_at")),
        rollback_outcome=doc.get("rollback_outcome"),
    )


@overload
def aware(at: datetime) -> datetime: ...
@overload
def aware(at: datetime | None) -> datetime | None: ...
def aware(at: datetime | None) -> datetime | None:
    """`at` with UTC as its zone if it has none (the store returns naive UTC times)."""
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at
