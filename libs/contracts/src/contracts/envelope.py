"""The envelope every Batchyard event travels in.

Contract for subscribers: the envelope's fields are stable; `data` holds the event body whose
shape is given by `type` and `schema_version` (see `docs/events/`). Consumers must ignore fields
they do not know: events evolve only by adding optional fields.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


# Event ids need to be unique, not unpredictable: drawn from a generator seeded from the OS
# (at start, and again in a forked child) instead of asking the OS for each id, which took a
# tenth of an executor's own CPU per job (docs/performance.md, session 13).
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def new_event_id() -> str:
    """A random (version 4) UUID as 32 hex digits."""
    n = _ids.getrandbits(128)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # the RFC 4122 variant
    n = (n & ~(0xF000 << 64)) | (4 << 76)  # version 4
    return f"{n:032x}"


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
