"""Planning a rollback reads the batch's backups from the real store a few at a time and keeps
what it learnt of each (its checksum checked), not their content: it held them all at once,
so a batch whose backups together were larger than the service's memory could not be
rolled back. A corrupt one is still named, and the plan is the same."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from contracts.codec import envelope_for
from contracts.events import RollbackRequested
from contracts.topics import Topics
from jobkit import JobContext, JobType
from rollback.adapters.backups import MongoPlans
from rollback.adapters.queue import MongoQueue
from rollback.domain.plan import BatchFacts
from rollback.handlers.rollbacks import Rollbacks
from servicekit.backups import MongoBackups
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOBS = 300
BACKUP_BYTES = 200_000


class Item(BaseModel):
    key: str


class Restores(JobType):
    name = "test.restores"
    Input = Item

    async def backup(self, item: Any, ctx: JobContext) -> dict[str, Any] | None:
        return {}

    async def compensate(self, item: Any, backup: dict[str, Any], ctx: JobContext) -> None:
        return None


class Facts:
    async def facts(self, batch_id: str) -> BatchFacts:
        completed = {f"{batch_id}.{i}": T0 + timedelta(seconds=i) for i in range(JOBS)}
        return BatchFacts(batch_id, Restores.name, {}, completed)


async def test_planning_holds_a_few_backups_at_a_time(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    backups = MongoBackups(db)
    for i in range(JOBS):
        job_id = f"b_big.{i}"
        await backups.put(
            job_id,
            batch_id="b_big",
            job_type=Restores.name,
            snapshot={"blob": f"{i:06d}" + "x" * BACKUP_BYTES},
            job_id=job_id,
            item={"key": str(i)},
            attempt=1,
            created_at=T0,
        )
    await db["backups"].update_one({"_id": "b_big.7"}, {"$set": {"checksum": "0" * 64}})
    out = RecordingPublisher()
    queue = MongoQueue(db)
    rollbacks = Rollbacks(
        backups, out, Topics(), Facts(), MongoPlans(db), {Restores.name: Restores()}, queue
    )
    request = RollbackRequested(batch_id="b_big", requested_by="u", dry_run=True)
    await rollbacks.handle([(envelope_for(request, producer="test"), request)])
    (queued,) = await queue.pending()

    tracemalloc.start()
    try:
        await rollbacks.run(queued)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    stored = JOBS * BACKUP_BYTES
    assert peak < stored / 4, f"planning held {peak:,} bytes for {stored:,} of backups"
    failed = out.of_type("RollbackFailed")[0].envelope.data
    assert list(failed["failed_jobs"]) == ["b_big.7"]
    assert "checksum" in failed["failed_jobs"]["b_big.7"]
    planned = out.of_type("RollbackPlanned")[0].envelope.data
    assert planned["steps_total"] == JOBS - 1
    assert planned["steps"][0]["job_id"] == f"b_big.{JOBS - 1}"  # the last completed first
