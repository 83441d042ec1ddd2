"""The scheduler's job states on the real store: changes are appended and read back merged in
the order they were written, a later leader's changes win over an earlier one's whatever the
clocks say, and job states kept in an older layout (buckets; changes as nested documents
before they were one binary) are still read (a scheduler upgraded in the middle of a batch
recovers it)."""

from __future__ import annotations

from typing import Any

import pytest
from bson.binary import Binary
from pymongo.asynchronous.database import AsyncDatabase

from scheduler.adapters.store import MongoSchedulerStore
from servicekit.blobs import COMPRESSED

pytestmark = pytest.mark.integration


async def test_changes_merge_field_by_field_in_the_order_written(db: AsyncDatabase[Any]) -> None:
    store = MongoSchedulerStore(db)
    await store.setup()
    await store.write_jobs(
        "b1", {0: {"status": "dispatched", "attempt": 1}, 1: {"status": "dispatched", "attempt": 1}}
    )
    await store.write_jobs("b1", {0: {"status": "running"}})
    await store.write_jobs(
        "b1", {0: {"status": "failed", "failures": 1}, 2: {"status": "dispatched"}}
    )
    await store.write_jobs("b1", {0: {"status": "retrying", "attempt": 2}})
    await store.write_jobs("b1", {})  # nothing to write, nothing written
    await store.write_jobs("b2", {0: {"status": "completed"}})

    assert await store.job_states("b1") == {
        0: {"status": "retrying", "attempt": 2, "failures": 1},
        1: {"status": "dispatched", "attempt": 1},
        2: {"status": "dispatched"},
    }
    assert await store.job_states("b2") == {0: {"status": "completed"}}
    assert await db["sched_jobs"].count_documents({"batch_id": "b1"}) == 4

    await store.drop_job_documents("b1")
    assert await store.job_states("b1") == {}
    assert await store.job_states("b2") == {0: {"status": "completed"}}


async def test_a_later_leaders_changes_win_over_an_earlier_ones(db: AsyncDatabase[Any]) -> None:
    earlier = MongoSchedulerStore(db, epoch=lambda: 3)
    later = MongoSchedulerStore(db, epoch=lambda: 4)
    await later.write_jobs("b1", {5: {"status": "completed"}})
    # the earlier leader's write lands after it (its clock is ahead, or it was slow)
    await earlier.write_jobs("b1", {5: {"status": "running", "executor": "e1"}})

    assert await later.job_states("b1") == {5: {"status": "completed", "executor": "e1"}}


async def test_job_states_in_the_bucket_layout_are_read_and_changed(
    db: AsyncDatabase[Any],
) -> None:
    await db["sched_jobs"].insert_one(
        {
            "_id": "b1:1",
            "batch_id": "b1",
            "bucket": 1,
            "jobs": {"j0": {"status": "completed"}, "j7": {"status": "running", "attempt": 1}},
        }
    )
    store = MongoSchedulerStore(db)
    await store.write_jobs("b1", {1007: {"status": "completed"}})

    assert await store.job_states("b1") == {
        1000: {"status": "completed"},
        1007: {"status": "completed", "attempt": 1},
    }


async def test_changes_stored_as_nested_documents_are_read_in_order_with_binary_ones(
    db: AsyncDatabase[Any],
) -> None:
    store = MongoSchedulerStore(db, epoch=lambda: 2)
    await store.write_jobs("b1", {3: {"status": "running", "attempt": 1}})
    stored = await db["sched_jobs"].find_one({"batch_id": "b1"})
    assert stored is not None
    assert isinstance(stored["changes"], Binary)
    assert stored["changes"].subtype == COMPRESSED
    # as the scheduler before it, the leader before this one, wrote them
    await db["sched_jobs"].insert_one(
        {
            "_id": "b1:1:5",
            "batch_id": "b1",
            "order": [1, 5],
            "changes": {"3": {"status": "dispatched", "failures": 1}, "4": {"status": "failed"}},
        }
    )

    assert await store.job_states("b1") == {
        3: {"status": "running", "attempt": 1, "failures": 1},
        4: {"status": "failed"},
    }


async def test_batch_documents_saved_together_read_back_as_if_written_in_order(
    db: AsyncDatabase[Any],
) -> None:
    store = MongoSchedulerStore(db)
    for batch_id in ("b1", "b2"):
        assert await store.insert_batch({"_id": batch_id, "status": "running", "seq": 1})
    # a batch that finished, then had its rollback asked for and started, in one flush
    await store.save_batches(
        [
            {"_id": "b1", "status": "failed", "seq": 7},
            {"_id": "b2", "status": "completed", "seq": 4},
            {"_id": "b1", "rollback_requested_at": "2026-12-06T00:00:00Z"},
            {"_id": "b1", "status": "rolling_back", "seq": 8},
        ]
    )

    assert await store.find_batch("b1") == {
        "_id": "b1",
        "status": "rolling_back",
        "seq": 8,
        "rollback_requested_at": "2026-12-06T00:00:00Z",
    }
    assert await store.find_batch("b2") == {"_id": "b2", "status": "completed", "seq": 4}
