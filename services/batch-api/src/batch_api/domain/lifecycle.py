"""What the API accepts for a batch in a given status, and the status it shows.

The scheduler owns the batch state machine and stays the authority: it ignores a command that
arrives too late (a pause after the batch finished). This table only decides which requests
the API refuses at once with a 409, from the status the caller can see. The API owns the
statuses before submission (`draft`, `uploading`, a draft's `cancelled`) and `archived`; every
other status comes from the reporter's batch view."""

from __future__ import annotations

from typing import Any, Final, Literal

Action = Literal["start", "pause", "resume", "cancel", "retry", "rollback", "duplicate", "archive"]
ACTIONS: Final = ("start", "pause", "resume", "cancel", "retry", "rollback", "duplicate", "archive")

FINISHED: Final = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
TERMINAL: Final = FINISHED | {"rolled_back", "rollback_failed", "archived"}
UNSUBMITTED: Final = frozenset({"draft", "uploading"})
ACTIVE: Final = frozenset({"queued", "running", "paused", "retrying"})
STOPPED: Final = frozenset({"cancelled", "failed"})
# A finished batch being rolled back, or that was: its jobs that never started ended then.
AFTER_THE_RUN: Final = frozenset({"rolling_back", "rolled_back", "rollback_failed"})
# Where a job that never started may have been skipped by `stop_on_error`, as guessed for a
# batch view from before snapshots said where the skipped jobs begin (`skipped_from`).
SKIPPING: Final = frozenset({"failed"}) | AFTER_THE_RUN

ALLOWED_FROM: Final[dict[str, frozenset[str]]] = {
    "start": UNSUBMITTED,
    "pause": frozenset({"queued", "running", "retrying"}),
    "resume": frozenset({"paused"}),
    "cancel": UNSUBMITTED | ACTIVE,
    "retry": frozenset({"completed_with_errors", "failed", "cancelled"}),
    "rollback": FINISHED | {"rollback_failed"},
    "duplicate": frozenset(
        UNSUBMITTED | ACTIVE | TERMINAL | {"rolling_back"},
    ),
    "archive": TERMINAL - {"archived"},
}
JOB_RETRY_FROM: Final = frozenset({"failed"})
JOB_CANCEL_FROM: Final = frozenset({"pending", "dispatched", "running", "retrying"})


class ActionNotAllowed(Exception):
    """The action cannot be taken on a batch (or job) in `status`: a 409 for the caller."""

    def __init__(self, what: str, action: str, status: str) -> None:
        super().__init__(f"cannot {action} a {what} that is {status}")
        self.action = action
        self.status = status


def check_action(action: str, status: str) -> None:
    """Raises `ActionNotAllowed` unless `action` is accepted for a batch in `status`."""
    if status not in ALLOWED_FROM[action]:
        raise ActionNotAllowed("batch", action, status)


def may_delete(status: str) -> bool:
    """Only a batch that will not change any more can be deleted."""
    return status in TERMINAL


def may_change_config(status: str) -> bool:
    """A batch's configuration is fixed once it was submitted."""
    return status in UNSUBMITTED


def may_change_concurrency(status: str) -> bool:
    """`max_concurrent_jobs`, alone of its configuration, may change until the batch ends."""
    return status in UNSUBMITTED or status in ACTIVE


def status_of(doc: dict[str, Any], view: dict[str, Any] | None) -> str:
    """The status a caller sees: the API's own phases first, then the batch view's status
    (`queued` until the reporter projected the batch)."""
    if doc.get("archived_at") is not None:
        return "archived"
    phase = doc.get("phase", "submitted")
    if phase != "submitted":
        return str(phase)
    if view is None:
        return "queued"
    return str(view.get("status", "queued"))


def job_status_of(view: dict[str, Any] | None, batch_status: str, skipped: bool = False) -> str:
    """A job's status from its view. Jobs the executors never started have no view: they are
    `pending` while the batch is active. A batch that ended `cancelled` or `failed` (stopped)
    ended every job that had not finished as cancelled, so those read `cancelled`, also once
    it was rolled back; those `stop_on_error` skipped (`skipped`, which the caller knows from
    the batch view) read `skipped`. (Job views converge a moment after the batch view, so a
    job may read `running` in a batch that just completed.)"""
    status = "pending" if view is None else str(view.get("status") or "pending")
    if view is None and batch_status in STOPPED | AFTER_THE_RUN:
        return "skipped" if skipped else "cancelled"
    if batch_status in STOPPED and status in ("pending", "dispatched", "running", "retrying"):
        return "cancelled"
    return status
