"""The envelope every Batchyard event travels in.

Contract for subscribers: the envelope's fields are stable; `data` holds the event body whose
shape is given by `type` and `schema_version` (see `docs/events/`). Consumers must ignore fields
they do not know: events evolve only by adding optional fields.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex


def deterministic_event_id(*parts: str) -> str:
    """An event id derived from its meaning, so a re-publish after a crash is recognised."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "batchyard:" + ":".join(parts)).hex


class Envelope(BaseModel):
    """Metadata around one event. `seq` is the per-batch sequence assigned by the scheduler
    (0 for events not ordered by it); read models apply an event only if its seq is newer."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=new_event_id)
    type: str
    schema_version: int = Field(ge=1)
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str
    tenant: str = "default"
    batch_id: str | None = None
    seq: int = Field(default=0, ge=0)
    traceparent: str | None = None
    data: dict[str, Any]
