"""A rollback's state on the real store: a plan of 150,000 jobs (~19 MiB as one document) is
kept, read back whole and in order, progresses, and goes with its batch. A store document
may not pass 16 MiB: such a plan was refused, and the rollback never started. The document
rewritten as the rollback progresses stays small whatever the plan's size (it held every
step: each progress write rewrote them all, and a 1,000-job rollback ran 14 steps/s)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from rollback.adapters.backups import INLINE_AT_MOST, PART_ENTRIES, MongoPlans

pytestmark = pytest.mark.integration


def state(rollback_id: str, jobs: int, refused: int = 0) -> dict[str, Any]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "_id": rollback_id,
        "batch_id": "b_big",
        "status": "planned",
        "reason": None,
        "dry_run": False,
        "steps": [
            {
                "job_id": f"b_big.{i}",
                "backup_id": f"b_big.{i}",
                "job_type": "templates.consolidate",
                "completed_at": at,
            }
            for i in reversed(range(jobs))
        ],
        "refusals": [{"job_id": f"b_big.x{i}", "reason": "backup missing"} for i in range(refused)],
        "done_count": 0,
        "failed": [],
    }


async def test_a_plan_of_a_hundred_thousand_jobs_is_kept_and_read_back_whole(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlans(db)
    big = state("r1", 150_000, refused=PART_ENTRIES + 1)
    stored = await plans.create(big)
    assert stored["steps"] == big["steps"]
    assert stored["refusals"] == big["refusals"]
    again = await plans.create(state("r1", 3))  # a redelivered request: the first one stays
    assert len(again["steps"]) == 150_000

    await plans.set("r1", {"done_count": 5, "status": "rolling_back"})
    read = await plans.get("r1")
    assert read is not None
    assert (read["done_count"], read["status"]) == (5, "rolling_back")
    assert read["steps"][0]["job_id"] == "b_big.149999"
    assert read["steps"][-1]["job_id"] == "b_big.0"

    small = state("r2", 10)
    assert (await plans.create(small))["steps"] == small["steps"]
    assert "parts" not in (await db["rollbacks"].find_one({"_id": "r2"}) or {})

    await plans.drop_batch("b_big")
    assert await db["rollbacks"].count_documents({}) == 0


async def test_the_document_a_rollback_rewrites_stays_small_as_plans_grow(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlans(db)
    sizes = {}
    for jobs in (INLINE_AT_MOST, 5_000):
        rollback_id = f"r{jobs}"
        plan = state(rollback_id, jobs)
        assert (await plans.create(plan))["steps"] == plan["steps"]
        await plans.set(rollback_id, {"done_count": 1})
        raw = await db["rollbacks"].find_one({"_id": rollback_id})
        assert raw is not None
        assert raw["done_count"] == 1
        sizes[jobs] = len(bson.encode(raw))
        read = await plans.get(rollback_id)
        assert read is not None
        assert read["steps"] == plan["steps"]
    assert sizes[5_000] <= sizes[INLINE_AT_MOST] < 32 * 1024, sizes


async def test_one_plan_goes_with_its_parts_and_leaves_the_others(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    """A dry run's plan is dropped once its outcome is announced."""
    plans = MongoPlans(db)
    await plans.create(state("r_dry", PART_ENTRIES + 1))
    await plans.create(state("r_kept", 5))
    assert await db["rollbacks"].count_documents({}) > 2  # the dry run's parts too
    await plans.drop("r_dry")
    assert [d["_id"] async for d in db["rollbacks"].find({}, {"_id": 1})] == ["r_kept"]
    await plans.drop("r_none")  # nothing to drop: nothing happens
