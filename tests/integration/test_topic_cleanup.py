"""Topics of a finished test or benchmark are deleted by prefix, and only those: the dev
stack's Kafka is shared, and thousands of leftover partitions made it slow to start."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from contracts.topics import Topics
from servicekit.kafka import delete_topics, delete_topics_blocking, ensure_topics

pytestmark = pytest.mark.integration


async def _names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _gone(bootstrap: str, names: set[str], timeout: float = 30.0) -> set[str]:
    """The names still listed once deletion settled (deletion is asynchronous in Kafka)."""
    deadline = asyncio.get_running_loop().time() + timeout
    left = names & await _names(bootstrap)
    while left and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        left = names & await _names(bootstrap)
    return left


async def _listed(bootstrap: str, names: set[str], timeout: float = 30.0) -> None:
    """Waits until a new topic shows in the metadata every client reads."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not names <= await _names(bootstrap):
        assert asyncio.get_running_loop().time() < deadline, "topics never listed"
        await asyncio.sleep(0.2)


async def test_only_the_prefix_is_deleted(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    doomed, kept = Topics(prefix=f"cleanup{run}."), Topics(prefix=f"cleanupkeep{run}.")
    await ensure_topics(kafka_bootstrap, dict.fromkeys(doomed.all(), 1))
    await ensure_topics(kafka_bootstrap, dict.fromkeys(kept.all(), 1))
    await _listed(kafka_bootstrap, set(doomed.all()) | set(kept.all()))

    deleted = await delete_topics(kafka_bootstrap, lambda n: n.startswith(doomed.prefix))

    assert set(deleted) == set(doomed.all())
    assert await _gone(kafka_bootstrap, set(doomed.all())) == set()
    assert set(kept.all()) <= await _names(kafka_bootstrap)
    await delete_topics(kafka_bootstrap, lambda n: n.startswith(kept.prefix))


async def test_blocking_form_works_inside_a_running_loop(kafka_bootstrap: str) -> None:
    """Benchmarks stop their stacks from synchronous code that may sit under a loop."""
    prefix = f"cleanup{uuid.uuid4().hex[:8]}."
    await ensure_topics(kafka_bootstrap, dict.fromkeys(Topics(prefix=prefix).all(), 1))
    await _listed(kafka_bootstrap, set(Topics(prefix=prefix).all()))

    deleted = delete_topics_blocking(kafka_bootstrap, lambda n: n.startswith(prefix))

    assert deleted
    assert all(n.startswith(prefix) for n in deleted)
    assert await _gone(kafka_bootstrap, set(deleted)) == set()


def test_an_unreachable_broker_is_reported_to_the_caller() -> None:
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        delete_topics_blocking("127.0.0.1:9", lambda n: True)
