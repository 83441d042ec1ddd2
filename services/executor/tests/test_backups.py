"""Automatic backups: taken before the job changes anything, once per job, and only when the
batch's backup strategy is `automatic`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.codec import envelope_for
from contracts.events import JobDispatched
from contracts.topics import Topics
from executor.handlers.runner import Executor
from jobkit import JobContext, JobType
from servicekit.backups import digest_of, encode_snapshot
from servicekit.publisher import RecordingPublisher
from servicekit.store import Document

pytestmark = pytest.mark.unit


class Item(BaseModel):
    key: str


class Counter(JobType):
    """Adds one to a value in a dict standing in for the store."""

    name = "test.counter"
    Input = Item

    def __init__(self) -> None:
        self.data: dict[str, int] = {"a": 5}
        self.seen_backup_first = True

    async def backup(self, item: Any, ctx: JobContext) -> dict[str, Any] | None:
        return {"value": self.data[item.key]}

    async def run(self, item: Any, ctx: JobContext) -> dict[str, Any]:
        self.data[item.key] += 1
        return {"value": self.data[item.key]}

    async def compensate(self, item: Any, backup: dict[str, Any], ctx: JobContext) -> None:
        self.data[item.key] = backup["value"]

    async def state_of(
        self, item: Any, backup: dict[str, Any], ctx: JobContext
    ) -> dict[str, str] | None:
        if self.data[item.key] < 0:
            raise ConnectionError("the store went away")
        return {item.key: digest_of(self.data[item.key])}


class FakeBackups:
    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}

    async def put(self, backup_id: str, **kw: Any) -> tuple[Document, bool]:
        if backup_id in self.docs:
            return self.docs[backup_id], False
        text, checksum = encode_snapshot(kw["snapshot"])
        doc = {"_id": backup_id, "data": text, "checksum": checksum, "size_bytes": len(text)}
        self.docs[backup_id] = doc | {"completed_at": None}
        return doc, True

    async def get(self, backup_id: str) -> Document | None:
        return self.docs.get(backup_id)

    async def mark_completed(
        self, backup_id: str, at: datetime, after: dict[str, str] | None = None
    ) -> None:
        self.docs[backup_id] |= {"completed_at": at, "after": after}


async def run_job(ex: Executor, attempt: int = 1, **params: Any) -> None:
    d = JobDispatched(
        job_id="b1.0",
        batch_id="b1",
        index=0,
        job_type="test.counter",
        attempt=attempt,
        item={"key": "a"},
        params=params,
        timeout_s=5,
        lease_s=30,
        dispatched_at=datetime.now(UTC),
    )
    await ex.accept([(envelope_for(d, producer="t"), d)])
    for _ in range(200):
        if not ex.running:
            return
        await asyncio.sleep(0.01)


async def test_automatic_backup_is_the_state_before_the_first_attempt() -> None:
    counter, backups, out = Counter(), FakeBackups(), RecordingPublisher()
    ex = Executor("e1", 2, {"test.counter": counter}, out, Topics(), backups=backups)
    await run_job(ex)
    await run_job(ex, attempt=2)  # a re-run does not overwrite the first backup
    assert counter.data["a"] == 7
    assert [m.envelope.type for m in out.sent].count("BackupCreated") == 1
    created = out.of_type("BackupCreated")[0].envelope.data
    assert created["backup_id"] == "b1.0"
    assert backups.docs["b1.0"]["data"] == encode_snapshot({"value": 5})[0]
    assert backups.docs["b1.0"]["completed_at"] is not None
    # what the job left, for a rollback to tell a later change: the last attempt's
    assert backups.docs["b1.0"]["after"] == {"a": digest_of(7)}


async def test_a_job_whose_state_cannot_be_read_after_it_ran_still_completes() -> None:
    counter, backups, out = Counter(), FakeBackups(), RecordingPublisher()
    counter.data["a"] = -5
    ex = Executor("e1", 2, {"test.counter": counter}, out, Topics(), backups=backups)
    await run_job(ex)
    assert [m.envelope.type for m in out.sent][-1] == "JobCompleted"
    assert backups.docs["b1.0"]["after"] is None
    assert backups.docs["b1.0"]["completed_at"] is not None


@pytest.mark.parametrize("strategy", ["none", "manual"])
async def test_other_strategies_take_no_job_backup(strategy: str) -> None:
    counter, backups, out = Counter(), FakeBackups(), RecordingPublisher()
    ex = Executor("e1", 2, {"test.counter": counter}, out, Topics(), backups=backups)
    await run_job(ex, backup_strategy=strategy)
    assert counter.data["a"] == 6
    assert backups.docs == {}
    assert out.of_type("BackupCreated") == []
