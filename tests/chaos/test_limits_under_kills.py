"""Concurrency limits hold while executors are killed: two batches of `demo.sleep` jobs
record every run (start and end, in `demo_runs`), executors are killed with SIGKILL and
restarted, and afterwards the runs never overlap more than a batch's `max_concurrent_jobs`
nor more than the scheduler's global limit. A run cut short by a kill ends at the kill."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from chaos_support import kill_9, restart
from pymongo import AsyncMongoClient
from stack_support import Stack

from devstack import processes

pytestmark = pytest.mark.chaos

PER_BATCH = 12
GLOBAL = 20
JOBS = 150
# Each job sleeps 1 s: long beside a dispatch's trip on a loaded machine, so whether the peak
# reaches the global limit depends on the limits, not on how evenly the dispatches arrive
# (with 0.3 s jobs a loaded CI machine once peaked at 15 of 20).


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    current = peak = 0
    for _, step in edges:  # an end at the same instant as a start sorts first (-1 < 1)
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize(
    "chaos_stack", [{"BATCHYARD_SCHEDULER_GLOBAL_MAX_IN_FLIGHT": str(GLOBAL)}], indirect=True
)
async def test_limits_are_never_exceeded_while_executors_die(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    killed: dict[int, float] = {}
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        ids = []
        for name in ("left", "right"):
            r = await api.post(
                "/v1/batches",
                json={
                    "name": name,
                    "job_type": "demo.sleep",
                    "items": [{"seconds": 1.0}] * JOBS,
                    "config": {
                        "max_concurrent_jobs": PER_BATCH,
                        "params": {"record_concurrency": True},
                    },
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + 300
        statuses: dict[str, dict[str, Any]] = {}
        while True:
            statuses = {i: (await api.get(f"/v1/batches/{i}")).json() for i in ids}
            if all(
                s["status"] in ("completed", "completed_with_errors", "failed")
                for s in statuses.values()
            ):
                break
            assert time.monotonic() < deadline, statuses
            done = sum(s["progress"]["completed"] for s in statuses.values())
            if len(killed) < 2 and done >= (len(killed) + 1) * 2 * JOBS // 3:
                victim = f"executor-{len(killed) + 2}"
                record = processes.read_record(chaos_stack.run_dir, victim)
                assert record is not None
                kill_9(chaos_stack, victim)
                killed[record.pid] = time.time()
                await asyncio.sleep(1)
                restart(chaos_stack, victim, kafka_bootstrap)
            await asyncio.sleep(0.3)
    assert len(killed) == 2, "the batches finished before the executors could be killed"
    for s in statuses.values():
        assert s["status"] == "completed", s
        assert s["progress"]["completed"] == JOBS

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(chaos_stack.mongodb_url)
    try:
        runs = await client[chaos_stack.database]["demo_runs"].find({}).to_list(None)
    finally:
        await client.close()
    intervals: dict[str, list[tuple[float, float]]] = {i: [] for i in ids}
    for run in runs:
        end = run.get("end")
        if end is None:
            assert run["pid"] in killed, f"a run that was not killed never ended: {run}"
            end = killed[run["pid"]]
        intervals[run["batch_id"]].append((run["start"], end))
    assert {len(v) >= JOBS for v in intervals.values()} == {True}
    per_batch = {i: max_overlap(v) for i, v in intervals.items()}
    overall = max_overlap([iv for v in intervals.values() for iv in v])
    assert all(peak <= PER_BATCH for peak in per_batch.values()), per_batch
    assert overall <= GLOBAL, overall
    # The limits were the binding constraint, not idle capacity.
    assert overall >= GLOBAL - 4, overall
