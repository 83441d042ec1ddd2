"""kill -9 of executors in the middle of a batch: every job still ends completed, exactly
once in the read model, and nothing is lost. Leases are short here (3 s) so the test is quick."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_support import create_batch, kill_9, restart
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = 3


async def progress(api: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/batches/{batch_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_killed_executors_lose_no_job_and_run_none_twice(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    # Long enough (at least 5 s of work at 30 at once) that both kills land mid-batch: at 600
    # jobs 60 at once the batch ran in under 2 s once dispatches went in groups, and the
    # second kill came after it had finished. 50 ms jobs are dispatched in groups, so a
    # killed executor loses whole groups.
    total = 3000
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        batch_id = await create_batch(
            api,
            {
                "name": "chaos",
                "job_type": "demo.sleep",
                "items": [{"seconds": 0.05}] * total,
                "config": {"max_concurrent_jobs": 30},
            },
        )
        kills = 0
        deadline = time.monotonic() + 300
        body = await progress(api, batch_id)
        while body["status"] not in ("completed", "completed_with_errors", "failed"):
            assert time.monotonic() < deadline, f"stuck: {body['progress']}"
            done = body["progress"]["completed"]
            if kills < 2 and done >= (kills + 1) * total // 4:
                victim = f"executor-{kills + 2}"
                kill_9(chaos_stack, victim)
                await asyncio.sleep(1)
                restart(chaos_stack, victim, kafka_bootstrap)
                kills += 1
            await asyncio.sleep(0.1)
            body = await progress(api, batch_id)
        assert kills == 2, "the batch finished before the executors could be killed"
        assert body["status"] == "completed", body
        assert body["progress"]["completed"] == total
        assert body["progress"]["failed"] == 0

    views = await settled_job_views(
        chaos_stack.mongodb_url,
        chaos_stack.database,
        batch_id,
        lambda vs: len(vs) == total and all(v["status"] == "completed" for v in vs),
    )
    assert len(views) == total
    assert {v["index"] for v in views} == set(range(total))
    assert all(v["status"] == "completed" for v in views)
    assert any(v["attempt"] > 1 for v in views), "no job was ever re-dispatched"


@pytest.mark.parametrize("chaos_stack", [{"BATCHYARD_SCHEDULER_LEASE_S": "60"}], indirect=True)
async def test_a_restarted_executors_jobs_run_again_at_once_not_when_their_leases_end(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    """An executor killed and started again under its name (a container restarted in its
    pod): its first heartbeat says it is a new process, so the jobs the old one ran go to
    another attempt at once. Leases of 60 s here: waiting for them would fail the test."""
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        batch_id = await create_batch(
            api,
            {
                "name": "restart",
                "job_type": "demo.sleep",
                "items": [{"seconds": 8}] * 6,
                "config": {"max_concurrent_jobs": 6},
            },
        )
        deadline = time.monotonic() + 60
        while True:
            jobs = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
            running = [j for j in jobs if j["status"] == "running" and j["attempts"]]
            if len(running) == 6 and all(j["attempts"][-1]["executor"] for j in running):
                break
            assert time.monotonic() < deadline, jobs
            await asyncio.sleep(0.2)
        victim = running[0]["attempts"][-1]["executor"]
        lost = {j["id"] for j in running if j["attempts"][-1]["executor"] == victim}
        kill_9(chaos_stack, victim)
        killed_at = time.monotonic()
        restart(chaos_stack, victim, kafka_bootstrap)
        while True:
            jobs = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
            again = {j["id"] for j in jobs if j["id"] in lost and j["attempt"] >= 2}
            if again == lost:
                break
            assert time.monotonic() - killed_at < 30, f"{lost - again} still wait: {jobs}"
            await asyncio.sleep(0.2)
        body = await progress(api, batch_id)
        while body["status"] not in ("completed", "completed_with_errors", "failed"):
            assert time.monotonic() - killed_at < 50, body
            await asyncio.sleep(0.3)
            body = await progress(api, batch_id)
        assert body["status"] == "completed", body
        assert body["progress"]["completed"] == 6
