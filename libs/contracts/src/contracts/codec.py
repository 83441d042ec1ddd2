"""Encoding events into envelopes on the wire (JSON) and back.

`decode` never lets a malformed message escape as an arbitrary exception: it raises
`PoisonMessage` with a reason, which consumers route to the dead-letter topic."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from contracts.envelope import Envelope, new_event_id, utcnow
from contracts.events import EVENTS_BY_TYPE, Event
from contracts.tolerant import validate_tolerantly

E = TypeVar("E", bound=Event)


class PoisonMessage(Exception):
    """A message that cannot be parsed or is of no known type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def envelope_for(
    event: Event,
    *,
    producer: str,
    tenant: str = "default",
    batch_id: str | None = None,
    seq: int = 0,
    traceparent: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    body = event.body()
    return Envelope(
        event_id=event_id or new_event_id(),
        type=event.TYPE,
        schema_version=event.VERSION,
        occurred_at=utcnow(),
        producer=producer,
        tenant=tenant,
        batch_id=batch_id if batch_id is not None else body.get("batch_id"),
        seq=seq,
        traceparent=traceparent,
        data=body,
    )


def encode(envelope: Envelope) -> bytes:
    return _ENVELOPE_JSON.to_json(envelope)


_ENVELOPE_JSON = Envelope.__pydantic_serializer__


def decode_envelope(raw: bytes) -> Envelope:
    try:
        return Envelope.model_validate_json(raw)  # parsed and checked in one pass
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise PoisonMessage(f"not JSON: {first['msg'].removeprefix('Invalid JSON: ')}") from exc
        raise PoisonMessage(f"not an envelope: {_first_error(exc)}") from exc


def decode(raw: bytes) -> tuple[Envelope, Event]:
    envelope = decode_envelope(raw)
    return envelope, event_of(envelope)


def event_of(envelope: Envelope) -> Event:
    cls = EVENTS_BY_TYPE.get(envelope.type)
    if cls is None:
        raise PoisonMessage(f"unknown event type {envelope.type!r}")
    try:
        # A newer producer may have added a field anywhere, `config` included: ignored, as
        # unknown fields are (dead-lettering it would lose its batch or job).
        return validate_tolerantly(cls, envelope.data)
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {envelope.type}: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])
