"""What the rollback service learns of a batch from the reporter's read models on the real
store: while only job events have been projected (the batch view the reporter opened for
them has no job type yet) the batch is not known, so a rollback request waits instead of
being refused; once the creation is projected, its job type, parameters and completed jobs
are read, from packed job views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import BatchCreated, Event, JobCompleted, JobStarted
from contracts.vocabulary import BatchConfig
from reporter.adapters.store import MongoProjectionStore
from rollback.adapters.backups import ReadModelBatches

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def env(event: Event) -> tuple[Envelope, Event]:
    return envelope_for(event, producer="test"), event


def created(batch_id: str) -> tuple[Envelope, Event]:
    event = BatchCreated(
        batch_id=batch_id,
        name="n",
        job_type="demo.sleep",
        owner="u",
        config=BatchConfig(params={"seconds": 0}),
        created_at=T0,
    )
    return env(event)


def completed(batch_id: str, index: int) -> tuple[Envelope, Event]:
    event = JobCompleted(
        job_id=f"{batch_id}.{index}",
        batch_id=batch_id,
        attempt=1,
        executor_id="e",
        started_at=T0,
        finished_at=T1,
        duration_ms=5000,
        output={},
    )
    return env(event)


def started(batch_id: str, index: int) -> tuple[Envelope, Event]:
    event = JobStarted(
        job_id=f"{batch_id}.{index}", batch_id=batch_id, attempt=1, executor_id="e", started_at=T0
    )
    return env(event)


async def test_job_events_before_the_creation_leave_the_batch_unknown_until_it_is_projected(
    db: AsyncDatabase[Any],
) -> None:
    store = MongoProjectionStore(db)
    await store.setup()
    batches = ReadModelBatches(db)

    await store.apply([completed("b_r", 3), started("b_r", 4)])
    assert await db["batch_views"].find_one({"_id": "b_r"}) is not None
    assert await batches.facts("b_r") is None

    await store.apply([created("b_r")])
    facts = await batches.facts("b_r")
    assert facts is not None
    assert facts.job_type == "demo.sleep"
    assert facts.params == {"seconds": 0}
    assert set(facts.completed) == {"b_r.3"}
    finished = facts.completed["b_r.3"]
    assert finished is not None
    assert finished.replace(tzinfo=UTC) == T1


async def test_a_batch_never_seen_is_unknown(db: AsyncDatabase[Any]) -> None:
    assert await ReadModelBatches(db).facts("b_none") is None
