"""The reporter's guarded writes on the real store: newer wins, older and repeated events
change nothing, in any order; a rollback's record in its batch's view too (announced again
when its request is redelivered)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import (
    BatchCreated,
    BatchProgress,
    Event,
    JobCompleted,
    JobFailed,
    JobStarted,
    RollbackCompleted,
    RollbackFailed,
    RollbackProgress,
    RollbackStarted,
)
from contracts.vocabulary import BatchConfig, ProgressCounts
from reporter.adapters.store import MongoProjectionStore
from servicekit.jobviews import stored_views

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def env(event: Event, seq: int = 0, at: int = 0) -> tuple[Envelope, Event]:
    e = envelope_for(event, producer="test", seq=seq)
    return e.model_copy(update={"occurred_at": T0 + timedelta(seconds=at)}), event


def history() -> list[tuple[Envelope, Event]]:
    b = "b_1"
    events = [
        env(
            BatchCreated(
                batch_id=b,
                name="n",
                job_type="demo.sleep",
                owner="u",
                config=BatchConfig(),
                created_at=T0,
            )
        ),
    ]
    for seq in range(1, 4):
        counts = ProgressCounts(total=2, completed=seq - 1, pending=3 - seq)
        events.append(env(BatchProgress(batch_id=b, status="running", counts=counts), seq, seq))
    j = f"{b}.0"
    events += [
        env(JobStarted(job_id=j, batch_id=b, attempt=1, executor_id="e", started_at=T0), at=1),
        env(
            JobFailed(
                job_id=j,
                batch_id=b,
                attempt=1,
                executor_id="e",
                started_at=T0,
                finished_at=T0,
                duration_ms=1,
                error_class="X",
                error_message="m",
                retryable=True,
            ),
            at=2,
        ),
        env(JobStarted(job_id=j, batch_id=b, attempt=2, executor_id="e", started_at=T0), at=3),
        env(
            JobCompleted(
                job_id=j,
                batch_id=b,
                attempt=2,
                executor_id="e",
                started_at=T0,
                finished_at=T0,
                duration_ms=5,
                output={"n": 1},
            ),
            at=4,
        ),
    ]
    r, dry = "r_1", "r_dry"
    events += [
        env(RollbackStarted(batch_id=b, rollback_id=r, planned_jobs=2), at=5),
        env(RollbackProgress(batch_id=b, rollback_id=r, job_id=f"{b}.1", done=1, total=2), at=6),
        env(RollbackProgress(batch_id=b, rollback_id=r, job_id=f"{b}.2", done=2, total=2), at=6),
        env(RollbackCompleted(batch_id=b, rollback_id=r, compensated_jobs=2), at=7),
        env(RollbackStarted(batch_id=b, rollback_id=r, planned_jobs=2), at=9),  # announced again
        env(RollbackCompleted(batch_id=b, rollback_id=r, compensated_jobs=2), at=9),
        env(RollbackStarted(batch_id=b, rollback_id=dry, dry_run=True, planned_jobs=2), at=10),
        env(RollbackCompleted(batch_id=b, rollback_id=dry, dry_run=True), at=10),
        env(RollbackFailed(batch_id=b, rollback_id="r_2", reason="no"), at=11),  # a dry run's
        env(RollbackStarted(batch_id=b, rollback_id="r_dry2", dry_run=True, planned_jobs=2), at=12),
        env(
            RollbackFailed(
                batch_id=b,
                rollback_id="r_dry2",
                reason="1 job(s) cannot be restored",
                failed_jobs={f"{b}.1": "changed after the job: k1"},
                failed_jobs_total=1,
                dry_run=True,
            ),
            at=13,
        ),
    ]
    return events


async def snapshot(db: AsyncDatabase[Any]) -> dict[str, list[dict[str, Any]]]:
    """The read models' documents; job view buckets with their views decoded (the binary's
    bytes follow the order a view's fields were first set in, which readers never see)."""
    docs = {
        name: [d async for d in db[name].find({}).sort("_id", 1)]
        for name in ("batch_views", "job_views", "rollback_check_views")
    }
    docs["job_views"] = [d | {"views": stored_views(d)} for d in docs["job_views"]]
    return docs


async def apply(store: MongoProjectionStore, items: list[tuple[Envelope, Event]]) -> None:
    await store.apply(items)


async def test_in_order_once(db: AsyncDatabase[Any]) -> None:
    store = MongoProjectionStore(db)
    await store.setup()
    await apply(store, history())
    view = await db["batch_views"].find_one({"_id": "b_1"})
    assert view is not None
    assert view["seq"] == 3
    assert view["counts"]["completed"] == 2
    assert view["name"] == "n"
    bucket = await db["job_views"].find_one({"_id": "b_1:0"})
    assert bucket is not None
    job = stored_views(bucket)["j0"]
    assert job is not None
    assert job["status"] == "completed"
    assert job["attempt"] == 2
    assert job["errors"]["1"]["error_class"] == "X"
    assert view["rollbacks"] == {
        "r_1": {
            "started_at": T0 + timedelta(seconds=5),
            "total": 2,
            "done": 2,
            "finished_at": T0 + timedelta(seconds=7),
            "status": "rolled_back",
            "reason": None,
        },
        "r_2": {
            "finished_at": T0 + timedelta(seconds=11),
            "status": "rollback_failed",
            "reason": "no",
        },  # a refused dry run before RollbackFailed said so: no start, so never shown
    }
    # dry runs are checks, each in its own document
    checks = {d["_id"]: d async for d in db["rollback_check_views"].find({})}
    assert checks == {
        "r_dry": {
            "_id": "r_dry",
            "batch_id": "b_1",
            "started_at": T0 + timedelta(seconds=10),
            "total": 2,
            "finished_at": T0 + timedelta(seconds=10),
            "status": "clear",
            "reason": None,
        },
        "r_dry2": {
            "_id": "r_dry2",
            "batch_id": "b_1",
            "started_at": T0 + timedelta(seconds=12),
            "total": 2,
            "finished_at": T0 + timedelta(seconds=13),
            "status": "refused",
            "reason": "1 job(s) cannot be restored",
            "refused": [{"job_id": "b_1.1", "reason": "changed after the job: k1"}],
            "refused_total": 1,
        },
    }
    await store.drop_batch("b_1")
    assert await db["rollback_check_views"].count_documents({}) == 0


@pytest.mark.parametrize("order", ["reversed", "duplicated", "one_by_one_shuffled"])
async def test_any_order_and_repeats_give_the_same_documents(
    db: AsyncDatabase[Any], order: str
) -> None:
    await apply(MongoProjectionStore(db), history())
    expected = await snapshot(db)
    for name in ("batch_views", "job_views", "rollback_check_views"):
        await db[name].delete_many({})
    store = MongoProjectionStore(db)  # a fresh reporter: nothing cached
    items = history()
    if order == "reversed":
        await apply(store, items[::-1])
    elif order == "duplicated":
        await apply(store, items + items)
        await apply(store, items)
    else:
        for a, b in itertools.zip_longest(items[1::2], items[0::2]):
            for item in (a, b):
                if item is not None:
                    await apply(store, [item])
    assert await snapshot(db) == expected
