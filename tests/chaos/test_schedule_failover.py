"""kill -9 of the active scheduler while a schedule fires every two seconds: the standby takes
over and goes on firing; every due run is fired exactly once (none twice, none lost under
`catch_up: all`) and made exactly one batch."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from chaos_support import kill_9, standby_scheduler
from stack_support import Stack

pytestmark = pytest.mark.chaos


async def runs_of(api: httpx.AsyncClient, schedule_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/schedules/{schedule_id}/runs")
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["items"]
    return runs


async def wait_runs(api: httpx.AsyncClient, schedule_id: str, count: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while len(await runs_of(api, schedule_id)) < count:
        assert time.monotonic() < deadline, await runs_of(api, schedule_id)
        await asyncio.sleep(0.5)


async def test_a_schedule_fires_each_run_once_across_a_scheduler_failover(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    with standby_scheduler(chaos_stack, kafka_bootstrap):
        async with httpx.AsyncClient(
            base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
        ) as api:
            created = await api.post(
                "/v1/schedules",
                json={
                    "name": "through a failover",
                    "cron": "* * * * * */2",
                    "catch_up": "all",
                    "overlap": "queue",
                    "spec": {"job_type": "demo.sleep", "items": [{"seconds": 0}]},
                },
            )
            assert created.status_code == 201, created.text
            schedule_id = created.json()["id"]
            await wait_runs(api, schedule_id, 3, 60)
            kill_9(chaos_stack, "scheduler")
            before = len(await runs_of(api, schedule_id))
            await wait_runs(api, schedule_id, before + 5, 90)  # the standby fires
            await api.post(f"/v1/schedules/{schedule_id}/disable")
            await asyncio.sleep(3)
            runs = await runs_of(api, schedule_id)
            made = (
                await api.get(
                    "/v1/batches", params={"tag": f"schedule:{schedule_id}", "limit": 500}
                )
            ).json()["items"]

    times = sorted(datetime.fromisoformat(r["run_at"]) for r in runs)
    assert len({r["run_id"] for r in runs}) == len(runs), "a run was handled twice"
    # Every two-second slot from the first run to the last, each once: none lost in between.
    expected = [times[0] + timedelta(seconds=2 * i) for i in range(len(times))]
    assert times == expected, [t.isoformat() for t in times]
    assert all(r["outcome"] == "created" for r in runs), runs
    assert sorted(b["id"] for b in made) == sorted(r["batch_id"] for r in runs)
