"""demo.sleep's concurrency record on the real store: the maximum of simultaneously running
jobs per batch and overall, and `current` back to zero when they end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from jobkit import Resources
from jobtypes.demo import DemoSleep, SleepInput

pytestmark = pytest.mark.integration


class Ctx:
    def __init__(self, batch_id: str) -> None:
        self.job_id = f"{batch_id}.0"
        self.batch_id = batch_id
        self.attempt = 1
        self.params: dict[str, Any] = {}
        self.cancel_requested = False
        self.warnings: list[str] = []

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)


async def test_max_concurrency_is_recorded_per_batch_and_globally(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    job = DemoSleep()
    await job.setup(Resources(store=db))
    item = SleepInput(seconds=0.6, record_concurrency=True)
    await asyncio.gather(
        *[job.run(item, Ctx("b1")) for _ in range(3)], *[job.run(item, Ctx("b2")) for _ in range(2)]
    )
    await job.run(SleepInput(seconds=0), Ctx("b3"))  # not recorded
    docs = {d["_id"]: d async for d in db["demo_concurrency"].find({})}
    assert {k: (d["current"], d["max"]) for k, d in docs.items()} == {
        "b1": (0, 3),
        "b2": (0, 2),
        "global": (0, 5),
    }


async def test_a_cancelled_job_is_counted_out(db: AsyncDatabase[dict[str, Any]]) -> None:
    job = DemoSleep()
    await job.setup(Resources(store=db))
    task = asyncio.create_task(job.run(SleepInput(seconds=30, record_concurrency=True), Ctx("b")))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    doc = await db["demo_concurrency"].find_one({"_id": "b"})
    assert doc is not None
    assert (doc["current"], doc["max"]) == (0, 1)
