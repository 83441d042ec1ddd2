"""Which webhook notices a batch snapshot calls for: a pure function of the batch's webhooks
and the snapshot.

Every notice has a deterministic id (`<batch>:<hook>:<key>`), so a replayed snapshot asks for
the same notices again and the delivery store keeps one of each:
- `start`: the batch started (`on_start`);
- `progress-<mark>`: progress crossed a multiple of `progress_every_percent` (one notice per
  mark reached; marks passed over between two snapshots are not sent);
- `first-error`: the first failed job (`on_error`), and `<status>-<seq>` when the batch ends
  failed or a rollback of it fails;
- `finished-<seq>`: every end of a run or of a rollback (`on_complete`); a retried batch
  that finishes again is another notice;
- `deadline-at-risk`, `deadline-missed` (`on_error`): the scheduler judged that the batch
  will finish after its deadline, or the deadline passed with jobs left (not when the
  batch's `on_deadline_missed` is `continue`). Each is sent once per batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.events import BatchDeadlineAtRisk, BatchDeadlineMissed, BatchSnapshot, BatchStarted
from contracts.vocabulary import Webhook, WebhookEvent

FINISHED = frozenset(
    {"completed", "completed_with_errors", "failed", "cancelled", "rolled_back", "rollback_failed"}
)
FAILED = frozenset({"failed", "rollback_failed"})
Watched = BatchSnapshot | BatchDeadlineAtRisk | BatchDeadlineMissed


@dataclass(frozen=True)
class Notice:
    delivery_id: str
    batch_id: str
    tenant: str
    hook: int
    url: str
    event: WebhookEvent
    payload: dict[str, Any]


def percent_done(snap: BatchSnapshot) -> float:
    c = snap.counts
    return 100.0 * c.finished / c.total if c.total else 0.0


def notices(
    what: Watched,
    *,
    seq: int,
    tenant: str,
    occurred_at: datetime,
    webhooks: list[Webhook],
    batch_name: str = "",
) -> list[Notice]:
    """The notices `what` calls for, hook by hook."""
    if not isinstance(what, BatchSnapshot):
        return _deadline_notices(what, tenant, occurred_at, webhooks, batch_name)
    snap = what
    percent = percent_done(snap)
    out: list[Notice] = []
    for hook, webhook in enumerate(webhooks):
        for event, key in _due(webhook, snap, seq, percent):
            delivery_id = f"{snap.batch_id}:{hook}:{key}"
            payload = {
                "event": event,
                "delivery_id": delivery_id,
                "occurred_at": occurred_at.isoformat(),
                "batch": {
                    "id": snap.batch_id,
                    "name": batch_name,
                    "status": snap.status,
                    "counts": snap.counts.model_dump(),
                    "percent": round(percent, 1),
                    "started_at": snap.started_at.isoformat() if snap.started_at else None,
                    "finished_at": snap.finished_at.isoformat() if snap.finished_at else None,
                    "reason": getattr(snap, "reason", None) or None,
                },
            }
            out.append(
                Notice(delivery_id, snap.batch_id, tenant, hook, webhook.url, event, payload)
            )
    return out


def _due(
    w: Webhook, snap: BatchSnapshot, seq: int, percent: float
) -> list[tuple[WebhookEvent, str]]:
    due: list[tuple[WebhookEvent, str]] = []
    if w.on_start and isinstance(snap, BatchStarted):
        due.append(("batch.started", "start"))
    if w.progress_every_percent and snap.status not in FINISHED:
        mark = int(percent // w.progress_every_percent) * w.progress_every_percent
        if 0 < mark < 100:
            due.append(("batch.progress", f"progress-{mark}"))
    if w.on_error:
        if snap.counts.failed > 0:
            due.append(("batch.error", "first-error"))
        if snap.status in FAILED:
            due.append(("batch.error", f"{snap.status}-{seq}"))
    if w.on_complete and snap.status in FINISHED:
        due.append(("batch.finished", f"finished-{seq}"))
    return due


def _deadline_notices(
    event: BatchDeadlineAtRisk | BatchDeadlineMissed,
    tenant: str,
    occurred_at: datetime,
    webhooks: list[Webhook],
    batch_name: str,
) -> list[Notice]:
    deadline: dict[str, Any] = {"at": event.deadline.isoformat()}
    name: WebhookEvent
    if isinstance(event, BatchDeadlineMissed):
        if event.action == "continue":
            return []
        name, key = "batch.deadline_missed", "deadline-missed"
        deadline["action"] = event.action
    else:
        name, key = "batch.deadline_at_risk", "deadline-at-risk"
        finish = event.predicted_finish
        deadline["predicted_finish"] = finish.isoformat() if finish else None
    out: list[Notice] = []
    for hook, webhook in enumerate(webhooks):
        if not webhook.on_error:
            continue
        delivery_id = f"{event.batch_id}:{hook}:{key}"
        payload = {
            "event": name,
            "delivery_id": delivery_id,
            "occurred_at": occurred_at.isoformat(),
            "batch": {"id": event.batch_id, "name": batch_name},
            "deadline": deadline,
        }
        out.append(Notice(delivery_id, event.batch_id, tenant, hook, webhook.url, name, payload))
    return out
