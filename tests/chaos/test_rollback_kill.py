"""kill -9 of the rollback service in the middle of a rollback: started again, it goes on
from its last checkpoint with its lease (it has the same name), and the rollback ends
restored, with every job counted once. A rollback asked for while the service is down shows
the batch rolling back (planning) at once, and runs when the service is back."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest
from chaos_support import kill_9, restart
from jobs_support import import_library, store, wait_for_status
from library_data import wide_library
from stack_support import Stack

pytestmark = pytest.mark.chaos
TEMPLATES = 4000


async def library(stack: Stack, ids: list[str]) -> dict[str, dict[str, Any]]:
    async with store(stack.mongodb_url, stack.database) as db:
        return {d["_id"]: d async for d in db["library_templates"].find({"_id": {"$in": ids}})}


async def rolled_back(
    api: httpx.AsyncClient, batch_id: str, jobs: int, within_s: float
) -> dict[str, Any]:
    """The batch's rollback once the batch is `rolled_back` and the rollback shows all `jobs`
    done (its end is projected beside the status: a moment later at most)."""
    batch = await wait_for_status(api, batch_id, {"rolled_back", "rollback_failed"}, within_s)
    assert batch["status"] == "rolled_back", batch.get("reason")
    shown: dict[str, Any] = batch["rollback"]
    for _ in range(40):
        shown = (await api.get(f"/v1/batches/{batch_id}")).json()["rollback"]
        if shown["done"] == jobs:
            break
        await asyncio.sleep(0.25)
    return shown


async def test_a_rollback_killed_mid_way_goes_on_when_the_service_is_back(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=60
    ) as api:
        ids = await import_library(api, wide_library(random.Random(5), TEMPLATES))
        before = await library(chaos_stack, ids)
        r = await api.post(
            "/v1/library/consolidations",
            json={"template_ids": ids, "templates_per_job": 2, "max_concurrent_jobs": 1000},
        )
        assert r.status_code == 201, r.text
        batch_id, jobs = r.json()["batch_id"], r.json()["plan"]["jobs"]
        await wait_for_status(api, batch_id, {"completed"}, 300)
        assert await library(chaos_stack, ids) != before, "the consolidation changed nothing"

        asked = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
        assert asked.status_code == 202, asked.text
        deadline = time.monotonic() + 120
        done_at_kill = 0
        while done_at_kill < jobs // 5:
            assert time.monotonic() < deadline, "the rollback did not get going"
            shown = (await api.get(f"/v1/batches/{batch_id}")).json()["rollback"]
            done_at_kill = shown["done"] if shown else 0
            await asyncio.sleep(0.1)
        kill_9(chaos_stack, "rollback")
        await asyncio.sleep(1)
        shown = (await api.get(f"/v1/batches/{batch_id}")).json()["rollback"]
        assert (shown["status"], shown["done"] < jobs) == ("rolling_back", True), shown
        restart(chaos_stack, "rollback", kafka_bootstrap)

        shown = await rolled_back(api, batch_id, jobs, 180)
        assert (shown["status"], shown["done"], shown["total"]) == ("rolled_back", jobs, jobs)
        assert await library(chaos_stack, ids) == before


async def test_a_rollback_asked_for_while_the_service_is_down_shows_at_once_and_runs_later(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    """The batch is `rolling_back`, its rollback `planning`, from the request on: before the
    rollback service has read a backup (here: while it is down); once back, it plans and
    restores under the same rollback id."""
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=60
    ) as api:
        ids = await import_library(api, wide_library(random.Random(6), 40))
        before = await library(chaos_stack, ids)
        r = await api.post(
            "/v1/library/consolidations", json={"template_ids": ids, "templates_per_job": 2}
        )
        assert r.status_code == 201, r.text
        batch_id, jobs = r.json()["batch_id"], r.json()["plan"]["jobs"]
        await wait_for_status(api, batch_id, {"completed"}, 120)
        kill_9(chaos_stack, "rollback")

        asked = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
        assert asked.status_code == 202, asked.text
        shown = await wait_for_status(api, batch_id, {"rolling_back"}, 30)
        planning = shown["rollback"]
        assert planning is not None, shown
        assert (planning["status"], planning["planning"], planning["total"]) == (
            "rolling_back",
            True,
            0,
        )
        await asyncio.sleep(2)  # nothing moves while the rollback service is away
        still = (await api.get(f"/v1/batches/{batch_id}")).json()
        assert (still["status"], still["rollback"]["planning"]) == ("rolling_back", True)
        restart(chaos_stack, "rollback", kafka_bootstrap)

        done = await rolled_back(api, batch_id, jobs, 120)
        assert done["rollback_id"] == planning["rollback_id"]
        assert (done["status"], done["planning"], done["done"], done["total"]) == (
            "rolled_back",
            False,
            jobs,
            jobs,
        )
        assert await library(chaos_stack, ids) == before
