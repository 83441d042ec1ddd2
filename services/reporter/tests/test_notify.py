"""Which notices a snapshot calls for, and when a failed delivery is tried again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.events import (
    BatchCompleted,
    BatchDeadlineAtRisk,
    BatchDeadlineMissed,
    BatchProgress,
    BatchStarted,
)
from contracts.vocabulary import ProgressCounts, Webhook
from reporter.domain.backoff import DeliveryPolicy, retryable_status
from reporter.domain.notify import notices

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 24, tzinfo=UTC)
ALL = Webhook(url="https://example.org/h", on_start=True, progress_every_percent=25)


def keys(snap: object, *hooks: Webhook, seq: int = 1) -> list[str]:
    found = notices(snap, seq=seq, tenant="t", occurred_at=AT, webhooks=list(hooks))  # type: ignore[arg-type]
    return [n.delivery_id.split(":", 1)[1] for n in found]


def counts(done: int, failed: int = 0, total: int = 100) -> ProgressCounts:
    return ProgressCounts(total=total, completed=done, failed=failed)


def test_a_start_is_announced_only_to_hooks_that_ask() -> None:
    snap = BatchStarted(batch_id="b", status="running", counts=counts(0))
    assert keys(snap, ALL, Webhook(url="https://example.org/quiet")) == ["0:start"]


def test_progress_names_the_last_mark_reached_so_replays_repeat_the_same_id() -> None:
    assert keys(BatchProgress(batch_id="b", status="running", counts=counts(24)), ALL) == []
    at_30 = BatchProgress(batch_id="b", status="running", counts=counts(30))
    assert keys(at_30, ALL) == ["0:progress-25"]
    assert keys(at_30, ALL, seq=7) == ["0:progress-25"]
    at_99 = BatchProgress(batch_id="b", status="running", counts=counts(99))
    assert keys(at_99, ALL) == ["0:progress-75"]


def test_the_first_failure_and_a_failed_end_are_errors() -> None:
    one = BatchProgress(batch_id="b", status="running", counts=counts(10, failed=1))
    two = BatchProgress(batch_id="b", status="running", counts=counts(10, failed=2))
    hook = Webhook(url="https://example.org/h")
    assert keys(one, hook) == keys(two, hook) == ["0:first-error"]
    failed = BatchCompleted.model_construct(
        batch_id="b", status="failed", counts=counts(50, failed=50), outcome="completed"
    )
    assert keys(failed, hook, seq=9) == ["0:first-error", "0:failed-9", "0:finished-9"]


def test_a_deadline_at_risk_or_missed_is_told_to_hooks_on_error_unless_continue() -> None:
    deadline = datetime(2026, 11, 24, 12, tzinfo=UTC)
    at_risk = BatchDeadlineAtRisk(batch_id="b", deadline=deadline, predicted_finish=deadline)
    quiet = Webhook(url="https://example.org/q", on_error=False)
    assert keys(at_risk, ALL, quiet) == ["0:deadline-at-risk"]
    for action in ("notify", "cancel"):
        missed = BatchDeadlineMissed(batch_id="b", deadline=deadline, action=action)
        (notice,) = notices(
            missed, seq=0, tenant="t", occurred_at=AT, webhooks=[ALL], batch_name="n"
        )
        assert notice.event == "batch.deadline_missed"
        assert notice.payload["batch"] == {"id": "b", "name": "n"}
        assert notice.payload["deadline"] == {"at": deadline.isoformat(), "action": action}
    carry_on = BatchDeadlineMissed(batch_id="b", deadline=deadline, action="continue")
    assert keys(carry_on, ALL) == []


def test_every_end_is_a_notice_of_its_own_and_ends_progress() -> None:
    done = BatchCompleted(batch_id="b", status="completed", counts=counts(100), outcome="completed")
    assert keys(done, ALL, seq=12) == ["0:finished-12"]
    assert keys(done, ALL, seq=20) == ["0:finished-20"]
    quiet = Webhook(url="https://example.org/h", on_complete=False)
    assert keys(done, quiet) == []


def test_backoff_doubles_up_to_its_cap_and_only_passing_failures_are_retried() -> None:
    policy = DeliveryPolicy(max_attempts=6, initial_s=1, max_s=5)
    assert [policy.delay_after(a) for a in range(1, 6)] == [1, 2, 4, 5, 5]
    assert [s for s in (400, 401, 404, 408, 410, 429, 500, 503) if retryable_status(s)] == [
        408,
        429,
        500,
        503,
    ]
