"""`demo.sleep`: sleeps and fails on request. For demos, benchmarks and chaos tests.

With `record_concurrency` (on the item, or `config.params.record_concurrency` for the whole
batch) each job counts itself in the store while it runs, in collection `demo_concurrency`:
documents `{_id: <batch id> | "global", current, max}`, `current` changed with `$inc` when a
job starts and ends and `max` raised with `$max` to the `current` its start produced. A chaos
test reads `max` to check that concurrency limits were never exceeded. A process killed with
-9 mid-job leaves its increment in `current` (it never ran its decrement), which raises
later readings; `max` before the kill is exact. It is off by default: it costs four store
writes per job.

Each recorded run is also written to `demo_runs` as one document per attempt and process,
`{_id, batch_id, job_id, attempt, pid, start, end}` (epoch seconds; `end` missing if the
process died): inserts and `_id` updates only, so no two runs touch one document, and a test
can compute the exact overlap, including runs cut short by a kill.

FerretDB v1 does not apply concurrent `$inc` updates of one document atomically (measured:
50 concurrent `$inc` by one left 15 to 24), so a process sends its counter updates one at a
time (a lock); updates from several executors can still race there. On MongoDB they are
atomic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from jobkit import (
    JobContext,
    JobType,
    PermanentError,
    Resources,
    RetryableError,
    Severity,
)
from jobtypes.noting import NotedWarnings, SkipReason, note

GLOBAL = "global"
COLLECTION = "demo_concurrency"
RUNS = "demo_runs"


class SleepInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=0.0, ge=0, le=3600, description="How long the job sleeps.")
    fail_probability: float = Field(default=0.0, ge=0, le=1)
    fail_first_attempts: int = Field(
        default=0, ge=0, description="Fail every attempt up to this number, then succeed."
    )
    fail_with: Literal["retryable", "permanent", "crash"] = Field(
        default="retryable",
        description="How a failing attempt fails: a retryable or permanent job error, or "
        "`crash`, an exception the job did not mean to raise (reported with its stack trace).",
    )
    error_class: str = Field(
        default="DemoFailure", min_length=1, max_length=100, description="Class of the failure."
    )
    severity: Severity | None = Field(
        default=None, description="How bad its failures are (default: by their kind)."
    )
    record_concurrency: bool = Field(
        default=False, description="Count this job in `demo_concurrency` while it runs."
    )
    progress_steps: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Sleep in this many steps, reporting progress after each (`step i of n`).",
    )
    warnings: NotedWarnings
    skip_reason: SkipReason


def _crash(attempt: int) -> None:
    raise RuntimeError(f"demo crash on attempt {attempt}")


async def _sleep(item: SleepInput, ctx: JobContext) -> None:
    steps = item.progress_steps
    if not steps:
        if item.seconds:
            await asyncio.sleep(item.seconds)
        return
    for step in range(1, steps + 1):
        await asyncio.sleep(item.seconds / steps)
        await ctx.report_progress(100 * step / steps, f"step {step} of {steps}")


class DemoSleep(JobType):
    name = "demo.sleep"
    Input = SleepInput
    description = "Sleeps for `seconds`; fails on request. For demos, benchmarks and chaos tests."

    def __init__(self) -> None:
        self._counters: AsyncCollection[dict[str, Any]] | None = None
        self._runs: AsyncCollection[dict[str, Any]] | None = None
        self._one_at_a_time = asyncio.Lock()

    async def setup(self, resources: Resources) -> None:
        if resources.store is not None:
            self._counters = resources.store[COLLECTION]
            self._runs = resources.store[RUNS]

    async def run(self, item: SleepInput, ctx: JobContext) -> dict[str, Any]:
        note(ctx, item.warnings, item.skip_reason)
        record = item.record_concurrency or bool(ctx.params.get("record_concurrency"))
        if record:
            async with self._counted(ctx.batch_id), self._timed(ctx, record):
                await _sleep(item, ctx)
        elif item.seconds or item.progress_steps:  # a no-op job (the benchmarks') costs no more
            await _sleep(item, ctx)
        failing = ctx.attempt <= item.fail_first_attempts or (
            item.fail_probability and random.random() < item.fail_probability
        )
        if failing:
            if item.fail_with == "crash":
                _crash(ctx.attempt)
            error = RetryableError if item.fail_with == "retryable" else PermanentError
            message = f"demo failure on attempt {ctx.attempt}"
            raise error(message, error_class=item.error_class, severity=item.severity)
        return {"slept_s": item.seconds, "attempt": ctx.attempt}

    @contextlib.asynccontextmanager
    async def _timed(self, ctx: JobContext, record: bool) -> AsyncIterator[None]:
        runs = self._runs
        if not record or runs is None:
            yield
            return
        run_id = f"{ctx.job_id}#{ctx.attempt}#{os.getpid()}"
        start = {
            "$set": {
                "batch_id": ctx.batch_id,
                "job_id": ctx.job_id,
                "attempt": ctx.attempt,
                "pid": os.getpid(),
                "start": time.time(),
            }
        }
        for tries_left in (2, 1, 0):
            try:
                await runs.update_one({"_id": run_id}, start, upsert=True)
                break
            except DuplicateKeyError:
                # FerretDB v1 may answer a duplicate key to upserts racing on a collection it
                # creates on first use (seen in CI); the document is ours alone, so try again
                if not tries_left:
                    raise
        try:
            yield
        finally:
            end = {"$set": {"end": time.time()}}
            await asyncio.shield(runs.update_one({"_id": run_id}, end))

    @contextlib.asynccontextmanager
    async def _counted(self, batch_id: str | None) -> AsyncIterator[None]:
        counters = self._counters
        if batch_id is None or counters is None:
            yield
            return
        keys = (batch_id, GLOBAL)
        async with self._one_at_a_time:
            for key in keys:
                current = await _increment(counters, key)
                await counters.update_one({"_id": key}, {"$max": {"max": current}})
        try:
            yield
        finally:
            await asyncio.shield(self._decrement(counters, keys))

    async def _decrement(
        self, counters: AsyncCollection[dict[str, Any]], keys: tuple[str, ...]
    ) -> None:
        async with self._one_at_a_time:
            for key in keys:
                await counters.update_one({"_id": key}, {"$inc": {"current": -1}})


async def _increment(counters: AsyncCollection[dict[str, Any]], key: str) -> int:
    """`current` + 1, returning the new value. Two first jobs racing to create the document:
    one upsert loses with a duplicate key and is simply repeated (the document now exists)."""
    for _ in range(3):
        try:
            after = await counters.find_one_and_update(
                {"_id": key},
                {"$inc": {"current": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            return int((after or {}).get("current", 1))
        except DuplicateKeyError:
            continue
    raise RuntimeError(f"could not count a job in {COLLECTION}/{key}")
