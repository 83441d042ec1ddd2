"""A rollback asked for, as the service keeps it until the rollback has ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.envelope import Envelope
from contracts.events import RollbackRequested, rollback_id_of
from contracts.tolerant import validate_tolerantly


@dataclass(frozen=True)
class Request:
    """What planning and running a rollback need of its `RollbackRequested`: the event, who
    asked (the tenant) and when. The rollback's id is derived from the request's event id, so
    a redelivered request is the same rollback."""

    rollback_id: str
    tenant: str
    occurred_at: datetime
    event: RollbackRequested

    @property
    def batch_id(self) -> str:
        return self.event.batch_id

    @classmethod
    def of(cls, env: Envelope, event: RollbackRequested) -> Request:
        rollback_id = rollback_id_of(event.batch_id, env.event_id)
        return cls(rollback_id, env.tenant, env.occurred_at, event)

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.rollback_id,
            "batch_id": self.batch_id,
            "tenant": self.tenant,
            "occurred_at": self.occurred_at,
            "request": self.event.model_dump(mode="json"),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Request:
        """Read tolerantly: a newer version of the service may have queued it."""
        occurred_at: datetime = doc["occurred_at"]
        return cls(
            doc["_id"],
            doc.get("tenant") or "default",
            occurred_at,
            validate_tolerantly(RollbackRequested, doc["request"]),
        )
