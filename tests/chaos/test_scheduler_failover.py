"""kill -9 of the active scheduler in the middle of a batch: the standby takes the lease within
seconds, rebuilds its state from the store, and the batch completes with every job once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from chaos_support import create_batch, kill_9, standby_scheduler, wait_standby
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.chaos


async def status_of(url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=3) as client:
        r = await client.get(url)
        return r.status_code, r.json()


async def test_standby_takes_over_and_the_batch_completes(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    with standby_scheduler(chaos_stack, kafka_bootstrap) as ready_url:
        await wait_standby(ready_url)
        await failover(chaos_stack, ready_url)


async def failover(chaos_stack: Stack, ready_url: str) -> None:
    # At least 5 s of work (20 at once), so the kill lands mid-batch: 400 jobs 40 at once can
    # run in well under a second now that 50 ms jobs are dispatched in groups.
    total = 2000
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        batch_id = await create_batch(
            api,
            {
                "name": "failover",
                "job_type": "demo.sleep",
                "items": [{"seconds": 0.05}] * total,
                "config": {"max_concurrent_jobs": 20},
            },
        )
        killed_at = None
        deadline = time.monotonic() + 240
        while True:
            body = (await api.get(f"/v1/batches/{batch_id}")).json()
            if body["status"] == "completed":
                break
            assert time.monotonic() < deadline, f"stuck after failover: {body['progress']}"
            if killed_at is None and body["progress"]["completed"] >= total // 4:
                kill_9(chaos_stack, "scheduler")
                killed_at = time.monotonic()
            await asyncio.sleep(0.1)
    assert killed_at is not None, "the batch finished before the scheduler was killed"
    code, body = await status_of(ready_url)
    assert code == 200, body
    views = await settled_job_views(
        chaos_stack.mongodb_url,
        chaos_stack.database,
        batch_id,
        lambda vs: len(vs) == total and all(v["status"] == "completed" for v in vs),
    )
    assert len(views) == total
    assert {v["index"] for v in views} == set(range(total))
    assert all(v["status"] == "completed" for v in views)
