"""An executor stopped by SIGTERM (a rolling upgrade, a scale-down) leaves the dispatch consumer
group at once and lets its running jobs end: none is cancelled and run again elsewhere, and
the other executors go on with the rest of the batch meanwhile."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from chaos_support import create_batch
from readmodels import settled_job_views
from stack_support import Stack

from devstack import processes

pytestmark = pytest.mark.chaos

# Longer than the chaos stack's 3 s lease: the draining executor's heartbeats must go on
# renewing it, or its jobs would be dispatched again meanwhile.
JOB_S = 4.0


def aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def test_a_stopped_executor_lets_its_jobs_end_and_none_runs_twice(
    chaos_stack: Stack,
) -> None:
    total = 60
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        batch_id = await create_batch(
            api,
            {
                "name": "drain",
                "job_type": "demo.sleep",
                "items": [{"seconds": JOB_S}] * total,
                "config": {"max_concurrent_jobs": 30},
            },
        )
        deadline = time.monotonic() + 60
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = (await api.get(f"/v1/batches/{batch_id}")).json()
            if body["progress"]["running"] >= 20:
                break
            await asyncio.sleep(0.1)
        assert body["progress"]["running"] >= 20, body["progress"]
        assert body["progress"]["completed"] == 0, "the jobs ended before the SIGTERM"

        sigterm_at = datetime.now(UTC)
        began = time.monotonic()
        result = await asyncio.to_thread(processes.stop, "executor-2", chaos_stack.run_dir, 40)
        took = time.monotonic() - began
        assert result is processes.StopResult.TERMINATED, result
        # It waited for its jobs (about one job's time), not for the 20 s drain bound.
        assert took < JOB_S + 8, f"executor-2 took {took:.1f} s to stop"

        deadline = time.monotonic() + 120
        while body["status"] not in ("completed", "completed_with_errors", "failed"):
            assert time.monotonic() < deadline, body["progress"]
            await asyncio.sleep(0.3)
            body = (await api.get(f"/v1/batches/{batch_id}")).json()
        assert body["status"] == "completed", body
        assert body["progress"]["completed"] == total

    views = await settled_job_views(
        chaos_stack.mongodb_url,
        chaos_stack.database,
        batch_id,
        lambda vs: len(vs) == total and all(v["status"] == "completed" for v in vs),
    )
    assert len(views) == total
    again = [v["index"] for v in views if v["attempt"] != 1]
    assert again == [], f"jobs run again after the SIGTERM: {again}"
    drained = [
        v for v in views if v["executor"] == "executor-2" and aware(v["finished_at"]) > sigterm_at
    ]
    assert drained, "executor-2 ended none of its running jobs after the SIGTERM"
