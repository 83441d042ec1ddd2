"""The scheduler's retention storage on the real store: a tenant's batches with the fields
retention judges, per-job documents dropped for one batch only, a batch deleted, and policies
with their last run time kept across instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from scheduler.adapters.store import MongoRetentionStore, MongoSchedulerStore
from scheduler.domain.retention import RetentionPolicy, batch_age, plan_retention

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def put(store: MongoSchedulerStore, batch_id: str, tenant: str, status: str) -> None:
    await store.insert_batch(
        {
            "_id": batch_id,
            "tenant": tenant,
            "job_type": "demo.sleep",
            "status": status,
            "finished_at": NOW - timedelta(days=10) if status == "completed" else None,
        }
    )
    await store.insert_chunk(batch_id, 0, 0, [{"seconds": 0}] * 3)
    await store.write_jobs(batch_id, {i: {"status": "completed"} for i in range(3)})


async def test_tenant_batches_drop_and_delete(db: AsyncDatabase[Any]) -> None:
    store = MongoSchedulerStore(db)
    await store.setup()
    await put(store, "b_old", "acme", "completed")
    await put(store, "b_run", "acme", "running")
    await put(store, "b_other", "zeta", "completed")

    docs = await store.tenant_batches("acme")
    assert {d["_id"] for d in docs} == {"b_old", "b_run"}
    plan = plan_retention(
        RetentionPolicy(True, archive_after_days=7), map(batch_age, docs), NOW, 10
    )
    assert [b.batch_id for b in plan.archive] == ["b_old"]  # times come back comparable
    assert plan.left_alone == 1

    await store.drop_job_documents("b_old")
    assert await store.job_states("b_old") == {}
    assert await store.chunk_layout("b_old") == []
    assert len(await store.job_states("b_run")) == 3
    assert await store.chunk_layout("b_other") == [(0, 0, 3)]
    await store.drop_job_documents("b_old")  # again: nothing to do, no error

    await store.delete_batch("b_old")
    assert await store.find_batch("b_old") is None
    assert await store.find_batch("b_run") is not None


async def test_policies_and_last_run_survive_a_new_instance(db: AsyncDatabase[Any]) -> None:
    first = MongoRetentionStore(db)
    await first.save_policy({"_id": "acme", "enabled": True, "revision": 2, "last_run_at": NOW})
    await first.save_policy({"_id": "acme", "enabled": True, "revision": 3, "last_run_at": NOW})
    [doc] = await MongoRetentionStore(db).all_policies()
    assert doc["revision"] == 3
    assert doc["last_run_at"].replace(tzinfo=UTC) == NOW
