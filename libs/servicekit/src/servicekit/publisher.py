"""Publishing events: the `EventPublisher` port and its Kafka adapter."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from faststream.kafka import KafkaBroker

from contracts.codec import encode
from contracts.envelope import Envelope
from servicekit.kafka import connected_producer
from servicekit.metrics import count_published
from servicekit.tracing import enabled, joined, producing


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    envelope: Envelope


class EventPublisher(Protocol):
    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Returns once every message is acknowledged by the broker; raises if any is not.
        Messages with the same key keep their order."""


CONTENT_TYPE = [("content-type", b"application/json")]


class Sender(Protocol):
    """What publishing needs of a Kafka producer (aiokafka's `AIOKafkaProducer.send`)."""

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]: ...


class KafkaEventPublisher:
    """Sends every message without waiting in between, then waits for all acknowledgements.

    Events go straight to the broker's connected aiokafka producer, past FastStream's publish
    path: its middleware and command building cost an executor about a sixth of its CPU per
    job (docs/performance.md, session 10). What the middleware did that we need is done here:
    the PRODUCER span (`servicekit.tracing.producing`) and the count of published messages
    (`faststream_published_messages_total`, after the broker's acknowledgement)."""

    def __init__(self, broker: KafkaBroker | Sender) -> None:
        """`broker`: a FastStream broker (its producer is looked up at each publish, as it
        exists only while the broker is started), or a `Sender` (a unit test's)."""
        self._broker = broker

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        sender = self._broker
        if isinstance(sender, KafkaBroker):
            sender = connected_producer(sender)
        futures: list[asyncio.Future[Any]] = []
        try:
            for m in messages:
                with producing(m.envelope, m.topic) as envelope:
                    futures.append(
                        await sender.send(
                            m.topic,
                            value=encode(envelope),
                            key=m.key.encode(),
                            headers=CONTENT_TYPE,
                        )
                    )
        except Exception:
            # The messages already handed to the producer are still waited for and counted
            # (so no failure of theirs goes unretrieved); then the send's own error is raised.
            await _settled(messages[: len(futures)], futures)
            raise
        for r in await _settled(messages, futures):
            if isinstance(r, BaseException):
                raise r


async def _settled(messages: Sequence[Outgoing], futures: list[asyncio.Future[Any]]) -> list[Any]:
    """The broker's answers to `messages` (results or exceptions), counted per topic."""
    results = await asyncio.gather(*futures, return_exceptions=True)
    by_topic: Counter[tuple[str, bool]] = Counter(
        (m.topic, not isinstance(r, BaseException)) for m, r in zip(messages, results, strict=True)
    )
    for (topic, ok), n in by_topic.items():
        count_published(topic, n, ok=ok)
    return results


class RecordingPublisher:
    """An in-memory publisher for unit tests of handlers."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        self.sent.extend(messages)

    def of_type(self, event_type: str) -> list[Outgoing]:
        return [m for m in self.sent if m.envelope.type == event_type]


class CoalescingPublisher:
    """Publishes what its callers hand it during one turn of the event loop together: one
    `inner.publish` (one wait for the broker's acknowledgements, one count in the metrics) for
    all of them, in the order they were handed over. Each caller returns once that publish
    has; if it raised, every caller of that turn raises the same error. A caller that is
    cancelled while it waits does not stop the others' messages.

    Worth it where many tasks publish a message or two each: an executor's jobs reporting
    their results (docs/performance.md, session 13)."""

    def __init__(self, inner: EventPublisher) -> None:
        self.inner = inner
        self._pending: list[Outgoing] = []
        self._done: asyncio.Future[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        done = self._done
        if done is None:
            loop = asyncio.get_running_loop()
            done = self._done = loop.create_future()
            loop.call_soon(self._flush)
        # Sent from the context of this turn's first caller: each message keeps its own
        # caller's trace (a job's outcome coalesced behind a heartbeat would lose it).
        if enabled():
            messages = [Outgoing(m.topic, m.key, joined(m.envelope)) for m in messages]
        self._pending.extend(messages)
        await asyncio.shield(done)

    def _flush(self) -> None:
        messages, self._pending = self._pending, []
        done, self._done = self._done, None
        assert done is not None
        task = asyncio.ensure_future(self._publish(messages, done))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _publish(self, messages: list[Outgoing], done: asyncio.Future[None]) -> None:
        try:
            await self.inner.publish(messages)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except BaseException as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)


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
