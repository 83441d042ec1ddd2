"""Shared metrics: lag arithmetic, HTTP requests by route template, observed publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from fastapi import FastAPI, HTTPException
from prometheus_client import REGISTRY

from contracts.codec import envelope_for
from contracts.events import BatchSubmitted
from servicekit.metrics import HttpMetricsMiddleware, lag_of
from servicekit.publisher import (
    KafkaEventPublisher,
    ObservedPublisher,
    Outgoing,
    RecordingPublisher,
)

pytestmark = pytest.mark.unit


def test_lag_sums_partitions_and_counts_uncommitted_ones_by_where_the_group_starts() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    parts = [a0, a1, b0]
    committed = {a0: 90}
    beginning = {a0: 0, a1: 10, b0: 5}
    end = {a0: 100, a1: 30, b0: 5}
    assert lag_of(parts, committed, beginning, end, from_beginning=True) == {"a": 30, "b": 0}
    assert lag_of(parts, committed, beginning, end, from_beginning=False) == {"a": 10, "b": 0}
    # a committed offset past the end (a truncated topic) is no negative lag
    assert lag_of([a0], {a0: 120}, beginning, end, from_beginning=True) == {"a": 0}


async def test_http_requests_are_measured_by_route_template_and_status() -> None:
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware, service="svc-test")

    @app.get("/v1/things/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, str]:
        if thing_id == "missing":
            raise HTTPException(404)
        return {"id": thing_id}

    def count(route: str, status: str) -> float:
        labels = {"service": "svc-test", "method": "GET", "route": route, "status": status}
        return (
            REGISTRY.get_sample_value("batchyard_http_request_duration_seconds_count", labels) or 0
        )

    before_ok, before_missing = (
        count("/v1/things/{thing_id}", "200"),
        count("/v1/things/{thing_id}", "404"),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for thing in ("a", "b", "missing"):
            await client.get(f"/v1/things/{thing}")
        await client.get("/nowhere")
    assert count("/v1/things/{thing_id}", "200") == before_ok + 2
    assert count("/v1/things/{thing_id}", "404") == before_missing + 1
    assert count("unmatched", "404") >= 1
    assert count("/v1/things/a", "200") == 0  # ids never become labels


class FailingPublisher:
    async def publish(self, messages: Sequence[Outgoing]) -> None:
        raise RuntimeError("Kafka is away")


async def test_observed_publisher_shows_only_what_was_published() -> None:
    seen: list[str] = []
    event = BatchSubmitted(batch_id="b", total_items=1, chunks=1)
    message = Outgoing("t", "b", envelope_for(event, producer="x"))
    inner = RecordingPublisher()
    await ObservedPublisher(inner, lambda ms: seen.extend(m.envelope.type for m in ms)).publish(
        [message]
    )
    assert seen == ["BatchSubmitted"]
    assert inner.sent == [message]
    with pytest.raises(RuntimeError):
        await ObservedPublisher(FailingPublisher(), lambda ms: seen.append("bad")).publish(
            [message]
        )
    assert seen == ["BatchSubmitted"]


class _Producer:
    """Acknowledges every send, except on the topics in `refused`; a send to a topic in
    `broken` raises at once (as aiokafka's does for a message too large)."""

    def __init__(self, refused: set[str], broken: frozenset[str] = frozenset()) -> None:
        self.refused = refused
        self.broken = broken
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        assert headers == [("content-type", b"application/json")]
        if topic in self.broken:
            raise MessageSizeTooLargeError()
        self.sent.append((topic, key, value))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if topic in self.refused:
            ack.set_exception(KafkaTimeoutError())
        else:
            ack.set_result(None)
        return ack


def _published(topic: str, status: str) -> float:
    labels = {"app_name": "batchyard", "broker": "kafka", "destination": topic, "status": status}
    return REGISTRY.get_sample_value("faststream_published_messages_total", labels) or 0


async def test_published_events_are_counted_per_topic_once_the_broker_acknowledged_them() -> None:
    producer = _Producer(refused={"t-refused"})
    publisher = KafkaEventPublisher(producer)
    event = envelope_for(BatchSubmitted(batch_id="b1", total_items=1, chunks=1), producer="t")
    before = {(t, s): _published(t, s) for t in ("t-a", "t-refused") for s in ("success", "error")}

    await publisher.publish([Outgoing("t-a", "b1", event), Outgoing("t-a", "b1", event)])
    assert [(t, k) for t, k, _ in producer.sent] == [("t-a", b"b1"), ("t-a", b"b1")]
    assert _published("t-a", "success") == before["t-a", "success"] + 2

    # one refused acknowledgement: the publish raises, and each message is counted as it went
    with pytest.raises(KafkaTimeoutError):
        await publisher.publish([Outgoing("t-a", "b1", event), Outgoing("t-refused", "b1", event)])
    assert _published("t-a", "success") == before["t-a", "success"] + 3
    assert _published("t-refused", "error") == before["t-refused", "error"] + 1
    assert _published("t-refused", "success") == before["t-refused", "success"]
    assert _published("t-a", "error") == before["t-a", "error"]


async def test_a_send_that_raises_still_settles_the_messages_sent_before_it() -> None:
    producer = _Producer(refused={"t-refused"}, broken=frozenset({"t-broken"}))
    publisher = KafkaEventPublisher(producer)
    event = envelope_for(BatchSubmitted(batch_id="b1", total_items=1, chunks=1), producer="t")
    before = {t: _published(t, s) for t, s in (("t-a", "success"), ("t-refused", "error"))}

    with pytest.raises(MessageSizeTooLargeError):
        await publisher.publish(
            [
                Outgoing("t-a", "b1", event),
                Outgoing("t-refused", "b1", event),
                Outgoing("t-broken", "b1", event),
                Outgoing("t-a", "b1", event),
            ]
        )
    # the two handed over before the broken send were waited for and counted (the refused
    # one's failure retrieved, not left to "never retrieved"); none after it was sent
    assert [t for t, _, _ in producer.sent] == ["t-a", "t-refused"]
    assert _published("t-a", "success") == before["t-a"] + 1
    assert _published("t-refused", "error") == before["t-refused"] + 1
