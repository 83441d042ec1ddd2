"""Which actions the API accepts in which status, and the status a caller sees."""

from __future__ import annotations

from typing import Any

import pytest

from batch_api.domain.lifecycle import (
    ALLOWED_FROM,
    ActionNotAllowed,
    check_action,
    job_status_of,
    may_change_config,
    may_delete,
    status_of,
)
from batch_api.handlers.batches import Loaded
from batch_api.handlers.jobs import job_status
from contracts.vocabulary import BatchStatus

pytestmark = pytest.mark.unit
STATUSES = list(BatchStatus.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", sorted(ALLOWED_FROM))
def test_every_action_is_decided_for_every_status(action: str, status: str) -> None:
    if status in ALLOWED_FROM[action]:
        check_action(action, status)
    else:
        with pytest.raises(ActionNotAllowed) as err:
            check_action(action, status)
        assert err.value.status == status
        assert status in str(err.value)


def test_the_usual_paths() -> None:
    check_action("pause", "running")
    check_action("resume", "paused")
    check_action("retry", "completed_with_errors")
    check_action("start", "draft")
    for action, status in [
        ("resume", "running"),
        ("pause", "completed"),
        ("retry", "completed"),
        ("start", "running"),
        ("archive", "running"),
        ("cancel", "completed"),
    ]:
        with pytest.raises(ActionNotAllowed):
            check_action(action, status)


def test_only_terminal_batches_are_deleted_and_config_is_fixed_after_submission() -> None:
    assert [may_delete(s) for s in ("completed", "archived", "cancelled")] == [True] * 3
    assert [may_delete(s) for s in ("running", "draft", "paused")] == [False] * 3
    assert [may_change_config(s) for s in ("draft", "uploading")] == [True] * 2
    assert not may_change_config("queued")


def test_status_prefers_the_api_phases() -> None:
    view = {"status": "completed"}
    assert status_of({"phase": "draft"}, None) == "draft"
    assert status_of({}, None) == "queued"
    assert status_of({"phase": "submitted"}, view) == "completed"
    assert status_of({"phase": "submitted", "archived_at": "x"}, view) == "archived"


def test_jobs_that_never_ran_in_a_stopped_batch_are_cancelled() -> None:
    assert job_status_of(None, "running") == "pending"
    assert job_status_of(None, "cancelled") == "cancelled"
    assert job_status_of({"status": "retrying"}, "failed") == "cancelled"
    assert job_status_of({"status": "completed"}, "cancelled") == "completed"
    assert job_status_of({"status": "running"}, "completed") == "running"
    # rolled back afterwards: those that never ran still ended cancelled, not pending
    assert job_status_of(None, "rolled_back") == "cancelled"
    assert job_status_of(None, "rolling_back") == "cancelled"
    assert job_status_of({"status": "completed"}, "rolled_back") == "completed"


def test_jobs_that_never_ran_in_a_batch_stopped_on_error_are_skipped() -> None:
    assert job_status_of(None, "failed", skipped=True) == "skipped"
    assert job_status_of(None, "rolled_back", skipped=True) == "skipped"
    assert job_status_of(None, "failed", skipped=False) == "cancelled"
    assert job_status_of(None, "retrying", skipped=True) == "pending"  # a retry runs them
    assert job_status_of({"status": "running"}, "failed", skipped=True) == "cancelled"
    assert job_status_of({"status": "failed"}, "failed", skipped=True) == "failed"


def test_the_batch_view_says_which_jobs_that_never_ran_were_skipped() -> None:
    counts = {"total": 10, "completed": 3, "failed": 1, "skipped": 4, "cancelled": 2}

    def status(index: int, batch_status: str, **view: Any) -> str:
        found = Loaded({"_id": "b"}, {"status": batch_status, "counts": counts, **view}, "x")
        return job_status(found, index, None)

    # a job type skipped two of them (they have views); stop_on_error skipped jobs 8 and 9
    for batch_status in ("failed", "rolled_back"):
        assert [status(i, batch_status, skipped_from=8) for i in (6, 7, 8, 9)] == [
            "cancelled",
            "cancelled",
            "skipped",
            "skipped",
        ]
    # a cancelled batch whose job type skipped some, rolled back: none was skipped by a stop
    assert status(9, "rolled_back", skipped_from=None) == "cancelled"
    # a view from before snapshots said where: any skipped job decides, as it did
    assert status(9, "rolled_back") == "skipped"
    assert status(9, "cancelled") == "cancelled"
