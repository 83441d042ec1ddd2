"""Publishing events: the `EventPublisher` port and its Kafka adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from faststream.kafka import KafkaBroker

from contracts.codec import encode
from contracts.envelope import Envelope
from servicekit.tracing import producing


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
        futures = []
        for m in messages:
            with producing(m.envelope, m.topic) as envelope:
                futures.append(
                    await self._broker.publish(
                        encode(envelope), m.topic, key=m.key.encode(), no_confirm=True
                    )
                )
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


Observer = Callable[[Sequence[Outgoing]], None]


class ObservedPublisher:
    """Publishes through `inner`, then shows what was published to `observe` (e.g. to count
    it in a service's metrics). Nothing is observed if publishing raised."""

    def __init__(self, inner: EventPublisher, observe: Observer) -> None:
        self.inner = inner
        self._observe = observe

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        await self.inner.publish(messages)
        self._observe(messages)
