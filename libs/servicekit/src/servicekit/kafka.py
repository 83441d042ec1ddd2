"""Kafka plumbing: topic creation, the broker, and raw records of a consumed batch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.exceptions import IncorrectState
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from contracts.topics import Topics
from servicekit.metrics import prometheus_middleware
from servicekit.partitioner import KeyPartitioner

log = logging.getLogger(__name__)

DISPATCH_PARTITIONS = 12
DEFAULT_PARTITIONS = 6


def topic_partitions(topics: Topics) -> dict[str, int]:
    """How many partitions each topic gets: dispatch bounds the executors that share work."""
    layout = dict.fromkeys(topics.all(), DEFAULT_PARTITIONS)
    layout[topics.job_dispatch] = DISPATCH_PARTITIONS
    layout[topics.executor_heartbeats] = 1
    layout[topics.control] = 1
    return layout


async def ensure_topics(bootstrap: str, layout: Mapping[str, int]) -> None:
    """Creates missing topics; existing ones are left as they are. Raises if Kafka is down."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=parts, replication_factor=1)
            for name, parts in layout.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics", extra={"topic": ",".join(t.name for t in missing)})
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, pick: Callable[[str], bool]) -> list[str]:
    """Deletes the topics whose names `pick` accepts (a finished test's or benchmark's prefix:
    thousands of leftover partitions make a broker slow to start). Returns their names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if pick(name))
        for start in range(0, len(names), 100):
            await admin.delete_topics(names[start : start + 100])
        return names
    finally:
        await admin.close()


def delete_topics_blocking(bootstrap: str, pick: Callable[[str], bool]) -> list[str]:
    """`delete_topics` from synchronous code, whether or not an event loop runs in this thread
    (it runs in a thread of its own); raises what the deletion raised."""
    deleted: list[str] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            deleted.extend(asyncio.run(delete_topics(bootstrap, pick)))
        except Exception as exc:  # handed to the caller's thread below
            failed.append(exc)

    worker = threading.Thread(target=run, name="delete-topics")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return deleted


def make_broker(bootstrap: str, client_id: str, **producer_options: Any) -> KafkaBroker:
    """A broker whose producer waits for the leader's ack, batches briefly and partitions as
    Kafka's clients do (`servicekit.partitioner`), with FastStream's Prometheus middleware
    (consumed batches; tracing is `servicekit.tracing`'s)."""
    options: dict[str, Any] = {
        "acks": "all",
        "linger_ms": 2,
        "max_batch_size": 256 * 1024,
        "partitioner": KeyPartitioner(),
    }
    options.update(producer_options)
    middlewares = [prometheus_middleware()]
    return KafkaBroker(
        bootstrap,
        client_id=client_id,
        logger=logging.getLogger("faststream"),
        middlewares=middlewares,
        **options,
    )


def connected_producer(broker: KafkaBroker) -> AIOKafkaProducer:
    """The aiokafka producer a started `broker` publishes with (FastStream 0.7 keeps it behind
    private attributes; a test on the real broker fails if that changes). Raises if the broker
    is not started."""
    try:
        producer = broker._producer._producer.producer  # type: ignore[attr-defined]
    except (AttributeError, IncorrectState) as exc:
        raise RuntimeError("the Kafka broker is not connected") from exc
    if not isinstance(producer, AIOKafkaProducer):
        raise RuntimeError(f"unexpected producer {type(producer).__name__}")
    return producer


def records_of(message: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The raw records behind a consumed message or batch."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)
