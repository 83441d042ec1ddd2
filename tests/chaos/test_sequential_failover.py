"""kill -9 of the active scheduler in the middle of a sequential batch: the standby takes
over and the batch goes on one job at a time in item order: every job run once, none
started before the one before it had finished."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime

import httpx
import pytest
from chaos_support import create_batch, kill_9, standby_scheduler, wait_standby
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.chaos

TOTAL = 60  # 0.1 s each, one at a time: about 6 s of work, so the kill lands mid-batch


async def test_a_sequential_batch_stays_in_order_across_a_failover(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    with standby_scheduler(chaos_stack, kafka_bootstrap) as ready_url:
        await wait_standby(ready_url)
        await run_through_a_failover(chaos_stack)


async def run_through_a_failover(chaos_stack: Stack) -> None:
    async with httpx.AsyncClient(
        base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
    ) as api:
        batch_id = await create_batch(
            api,
            {
                "name": "in order through a failover",
                "job_type": "demo.sleep",
                "items": [{"seconds": 0.1}] * TOTAL,
                "config": {"execution": "sequential"},
            },
        )
        killed = False
        deadline = time.monotonic() + 180
        while True:
            body = (await api.get(f"/v1/batches/{batch_id}")).json()
            if body["status"] == "completed":
                break
            assert time.monotonic() < deadline, f"stuck after failover: {body['progress']}"
            assert body["progress"]["running"] + body["progress"]["dispatched"] <= 1, body
            if not killed and body["progress"]["completed"] >= TOTAL // 4:
                kill_9(chaos_stack, "scheduler")
                killed = True
            await asyncio.sleep(0.1)
    assert killed, "the batch finished before the scheduler was killed"
    views = await settled_job_views(
        chaos_stack.mongodb_url,
        chaos_stack.database,
        batch_id,
        lambda vs: len(vs) == TOTAL and all(v["status"] == "completed" for v in vs),
    )
    ordered = sorted(views, key=lambda v: v["index"])
    assert [v["index"] for v in ordered] == list(range(TOTAL))
    # Ran once: one executor attempt each. A dispatch the killed scheduler saved but had not
    # published yet is sent again as attempt 2 once its lease runs out (the store is written
    # before Kafka), so the attempt number alone does not say how often a job ran.
    ran = {v["index"]: sorted(v["attempts"]) for v in ordered if len(v["attempts"]) != 1}
    assert not ran, f"jobs run more than once (by index, their attempts): {ran}"
    for before, after in itertools.pairwise(ordered):
        assert at(after["started_at"]) >= at(before["finished_at"]), (
            f"job {after['index']} started before job {before['index']} had finished"
        )


def at(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
