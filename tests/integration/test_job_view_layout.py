"""Job view buckets on the real store, as the reporter writes them and the API reads them: a
new batch records buckets of 100 jobs in its view; a batch whose view was stored before the
size was recorded keeps buckets of 1,000, and its job views are read where they were
written; job events projected before the batch's creation give it today's layout. Views are
stored packed, a bucket's in one binary field; views stored whole before packing, or as nested
documents before the binary, read back the same, and move into the binary, packed, when the
reporter next rewrites their bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from batch_api.adapters.views import ReadModels
from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import BatchCreated, Event, JobCompleted, JobStarted, RollbackProgress
from contracts.vocabulary import BatchConfig
from reporter.adapters.store import MongoProjectionStore
from servicekit.buckets import view_buckets
from servicekit.jobviews import stored_views, unpack

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def env(event: Event) -> tuple[Envelope, Event]:
    return envelope_for(event, producer="test"), event


def created(batch_id: str) -> tuple[Envelope, Event]:
    event = BatchCreated(
        batch_id=batch_id,
        name="n",
        job_type="demo.sleep",
        owner="u",
        config=BatchConfig(),
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
        finished_at=T0,
        duration_ms=1,
        output={"index": index},
        metrics={"index": float(index)},  # as executors report them
    )
    return env(event)


async def read_back(db: AsyncDatabase[Any], batch_id: str, total: int) -> dict[int, Any]:
    view = await db["batch_views"].find_one({"_id": batch_id})
    models = ReadModels(db)
    return {
        index: job["output"]["index"]
        async for index, job in models.job_views(batch_id, view_buckets(view), total)
    }


async def test_a_new_batch_uses_buckets_of_one_hundred(db: AsyncDatabase[Any]) -> None:
    store = MongoProjectionStore(db)
    await store.setup()
    await store.apply([created("b_new"), completed("b_new", 7), completed("b_new", 150)])

    view = await db["batch_views"].find_one({"_id": "b_new"})
    assert view is not None
    assert view["job_bucket_size"] == 100
    ids = sorted([d["_id"] async for d in db["job_views"].find({"batch_id": "b_new"})])
    assert ids == ["b_new:0", "b_new:1"]
    assert await read_back(db, "b_new", 200) == {7: 7, 150: 150}


async def test_a_batch_stored_before_sizes_were_recorded_keeps_its_buckets(
    db: AsyncDatabase[Any],
) -> None:
    await db["batch_views"].insert_one({"_id": "b_old", "status": "running", "seq": 3})
    await db["job_views"].insert_one(
        {"_id": "b_old:0", "batch_id": "b_old", "bucket": 0, "jobs": {}}
    )
    store = MongoProjectionStore(db)
    await store.apply([completed("b_old", 150), completed("b_old", 1200)])

    ids = sorted([d["_id"] async for d in db["job_views"].find({"batch_id": "b_old"})])
    assert ids == ["b_old:0", "b_old:1"]
    bucket = await db["job_views"].find_one({"_id": "b_old:0"})
    assert bucket is not None
    assert set(stored_views(bucket)) == {"j150"}
    assert await read_back(db, "b_old", 2000) == {150: 150, 1200: 1200}


async def test_job_events_before_the_creation_give_the_batch_todays_layout(
    db: AsyncDatabase[Any],
) -> None:
    store = MongoProjectionStore(db)
    started = JobStarted(
        job_id="b_early.120", batch_id="b_early", attempt=1, executor_id="e", started_at=T0
    )
    await store.apply([env(started)])
    await MongoProjectionStore(db).apply([created("b_early"), completed("b_early", 120)])

    view = await db["batch_views"].find_one({"_id": "b_early"})
    assert view is not None
    assert view["job_bucket_size"] == 100
    assert view["name"] == "n"
    bucket = await db["job_views"].find_one({"_id": "b_early:1"})
    assert bucket is not None
    assert stored_views(bucket)["j20"]["status"] == "completed"


async def test_views_stored_whole_or_nested_read_back_the_same_and_are_packed_when_rewritten(
    db: AsyncDatabase[Any],
) -> None:
    await MongoProjectionStore(db).apply([created("b_w"), completed("b_w", 1), completed("b_w", 2)])
    bucket = await db["job_views"].find_one({"_id": "b_w:0"})
    assert bucket is not None
    assert set(bucket) == {"_id", "batch_id", "tenant", "bucket", "views"}
    packed = stored_views(bucket)["j2"]
    assert "job_id" not in packed
    assert "attempts" not in packed
    whole = unpack(packed, "b_w", 2)
    assert whole["job_id"] == "b_w.2"
    assert whole["attempts"]["1"]["status"] == "completed"
    # as reporters before the binary stored them: nested documents, j2 whole (before packing)
    legacy = {"j1": stored_views(bucket)["j1"], "j2": whole}
    await db["job_views"].replace_one(
        {"_id": "b_w:0"}, {"batch_id": "b_w", "tenant": "default", "bucket": 0, "jobs": legacy}
    )
    view = await db["batch_views"].find_one({"_id": "b_w"})
    models = ReadModels(db)
    read = dict([pair async for pair in models.job_views("b_w", view_buckets(view), 10)])
    assert read[2] == whole
    assert (read[1]["job_id"], read[1]["index"], read[1]["metrics"]) == ("b_w.1", 1, {"index": 1.0})
    assert read[1]["attempts"]["1"]["status"] == "completed"

    compensated = RollbackProgress(batch_id="b_w", rollback_id="r", job_id="b_w.2", done=1, total=1)
    await MongoProjectionStore(db).apply([env(compensated)])  # a fresh reporter: reads it back
    bucket = await db["job_views"].find_one({"_id": "b_w:0"})
    assert bucket is not None
    assert "jobs" not in bucket  # every view moved into the binary, packed
    assert set(stored_views(bucket)) == {"j1", "j2"}
    assert "job_id" not in stored_views(bucket)["j2"]
    assert "job_id" not in stored_views(bucket)["j1"]
    after = dict([pair async for pair in models.job_views("b_w", view_buckets(view), 10)])
    assert after[2] == {**whole, "rolled_back_at": after[2]["rolled_back_at"], "rollback_id": "r"}
    assert after[1] == read[1]
