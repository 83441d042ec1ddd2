"""Priorities share capacity by weight: three batches of 50,000 jobs in all, low / medium /
high (weights 2 / 5 / 8), running at once; over a window where all three are waiting for
slots, each gets its weight's share of completed jobs within 10%."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from stack_support import Stack

pytestmark = pytest.mark.chaos

TOTAL = 50_000
PRIORITIES = {"low": 2, "medium": 5, "high": 8}
CHUNK = 5_000
WINDOW_S = 30.0


async def create_uploaded(api: httpx.AsyncClient, name: str, priority: str, n: int) -> str:
    r = await api.post(
        "/v1/batches",
        json={
            "name": name,
            "job_type": "demo.sleep",
            "priority": priority,
            "draft": True,
            "config": {"max_concurrent_jobs": 10_000},
        },
    )
    assert r.status_code == 201, r.text
    batch_id: str = r.json()["id"]
    line = orjson.dumps({"seconds": 0.2})
    for start in range(0, n, CHUNK):
        body = b"\n".join([line] * min(CHUNK, n - start))
        r = await api.post(
            f"/v1/batches/{batch_id}/items",
            content=body,
            headers={"content-type": "application/x-ndjson"},
        )
        assert r.status_code == 202, r.text
    r = await api.post(f"/v1/batches/{batch_id}/submit")
    assert r.status_code == 202, r.text
    return batch_id


async def completed(api: httpx.AsyncClient, ids: dict[str, str]) -> dict[str, int]:
    out = {}
    for priority, batch_id in ids.items():
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        assert body["status"] == "running", body
        out[priority] = body["progress"]["completed"]
    return out


# Shares show only while capacity is scarce: 64 slots per executor keep all three batches
# waiting for slots through the window (with the default 256, the first batch submitted ends
# before the third is uploaded).
@pytest.mark.parametrize("chaos_stack", [{"BATCHYARD_EXECUTOR_SLOTS": "64"}], indirect=True)
async def test_three_priorities_share_capacity_by_weight(chaos_stack: Stack) -> None:
    sizes = [TOTAL // 3 + (1 if i < TOTAL % 3 else 0) for i in range(3)]
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=60
    ) as api:
        ids = {
            priority: await create_uploaded(api, f"share-{priority}", priority, size)
            for priority, size in zip(PRIORITIES, sizes, strict=True)
        }
        deadline = time.monotonic() + 120
        while True:  # every batch has started and the system is in its steady state
            try:
                before = await completed(api, ids)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the batches did not all start"
                await asyncio.sleep(0.5)
        await asyncio.sleep(5)
        before = await completed(api, ids)
        await asyncio.sleep(WINDOW_S)
        after = await completed(api, ids)
        for batch_id in ids.values():
            await api.post(f"/v1/batches/{batch_id}/actions/cancel")

    done = {p: after[p] - before[p] for p in PRIORITIES}
    assert sum(done.values()) > 500, f"too little work in the window to judge: {done}"
    weights = sum(PRIORITIES.values())
    for priority, weight in PRIORITIES.items():
        share, expected = done[priority] / sum(done.values()), weight / weights
        assert abs(share - expected) <= 0.1 * expected, (
            f"{priority}: {share:.3f} of the work, expected {expected:.3f} ({done})"
        )
