"""Limits that hold across every executor, enforced by the one dispatcher."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx
import pytest
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.chaos

RATE = 20


@pytest.mark.parametrize(
    "chaos_stack", [{"BATCHYARD_SCHEDULER_RATE_LIMITS": f"demo.sleep={RATE}"}], indirect=True
)
async def test_a_job_type_rate_limit_holds_across_executors(chaos_stack: Stack) -> None:
    total = 150
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        ids = []
        for name in ("a", "b"):  # two batches of one type share the type's rate
            r = await api.post(
                "/v1/batches",
                json={
                    "name": name,
                    "job_type": "demo.sleep",
                    "items": [{"seconds": 0}] * (total // 2),
                    "config": {"max_concurrent_jobs": 500},
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + 120
        for batch_id in ids:
            while (await api.get(f"/v1/batches/{batch_id}")).json()["status"] != "completed":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.3)

    starts: list[datetime] = []
    executors: set[str] = set()
    for batch_id in ids:
        views = await settled_job_views(
            chaos_stack.mongodb_url,
            chaos_stack.database,
            batch_id,
            lambda vs: len(vs) == total // 2 and all(v["status"] == "completed" for v in vs),
        )
        starts += [v["started_at"] for v in views]
        executors |= {v["executor"] for v in views}
    assert len(executors) > 1, "the limit must hold across executors, but one ran everything"
    starts.sort()
    span = (starts[-1] - starts[0]).total_seconds()
    # A one-second burst, then RATE a second: (150 - 20) / 20 = 6.5 s at least.
    assert span >= (total - RATE) / RATE - 0.5, f"{total} jobs started within {span:.1f}s"
    for i, first in enumerate(starts):
        in_window = [s for s in starts[i:] if (s - first).total_seconds() < 2.0]
        assert len(in_window) <= RATE + 2 * RATE + 5, f"{len(in_window)} starts within 2 s"
