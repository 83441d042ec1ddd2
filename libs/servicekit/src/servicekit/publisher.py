"""Publishing events: the `EventPublisher` port and its Kafka adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from faststream.kafka import KafkaBroker

from contracts.codec import encode
from contracts.envelope import Envelope


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    envelope: Envelope


class EventPublisher(Protocol):
    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Returns once every message is acknowledged by the broker; raises if any is not.
        Messages with the same key keep their order."""


class KafkaEventPublisher:
    """Sends every message without waiting in between, then waits for all acknowledgements."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        futures = [
            await self._broker.publish(
                encode(m.envelope), m.topic, key=m.key.encode(), no_confirm=True
            )
            for m in messages
        ]
        if futures:
            await asyncio.gather(*futures)


class RecordingPublisher:
    """An in-memory publisher for unit tests of handlers."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        self.sent.extend(messages)

    def of_type(self, event_type: str) -> list[Outgoing]:
        return [m for m in self.sent if m.envelope.type == event_type]
