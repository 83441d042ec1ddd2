"""A reporter killed while a webhook notice waits for its next attempt: the restarted reporter
picks the pending delivery up from the store and delivers it, once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from chaos_support import kill_9, restart
from jobs_support import wait_for_status
from stack_support import Stack
from webhook_support import receiving

pytestmark = pytest.mark.chaos

WEBHOOK_ENV = {"BATCHYARD_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "BATCHYARD_WEBHOOK_BACKOFF_S": "3"}


async def deliveries(api: httpx.AsyncClient, batch_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/batches/{batch_id}/webhooks")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


@pytest.mark.parametrize("chaos_stack", [WEBHOOK_ENV], indirect=True)
async def test_a_pending_delivery_survives_a_reporter_kill(
    chaos_stack: Stack, kafka_bootstrap: str
) -> None:
    with receiving() as receiver:
        receiver.closed.set()
        async with httpx.AsyncClient(
            base_url=chaos_stack.url, headers=chaos_stack.headers, timeout=30
        ) as api:
            created = await api.post(
                "/v1/batches",
                json={
                    "name": "notify after a crash",
                    "job_type": "demo.sleep",
                    "items": [{"seconds": 0}] * 3,
                    "config": {"notifications": [{"url": receiver.url("crash")}]},
                },
            )
            assert created.status_code == 201, created.text
            batch_id = created.json()["id"]
            await wait_for_status(api, batch_id, {"completed"}, 60)
            deadline = time.monotonic() + 30
            while receiver.hits["crash"] == 0:
                assert time.monotonic() < deadline, "the first attempt never came"
                await asyncio.sleep(0.1)
            # the first attempt failed (503); the next one is due in 3 s: kill the reporter now
            kill_9(chaos_stack, "reporter")
            receiver.closed.clear()
            await asyncio.sleep(1)
            restart(chaos_stack, "reporter", kafka_bootstrap, WEBHOOK_ENV)
            deadline = time.monotonic() + 60
            while True:
                found = await deliveries(api, batch_id)
                if found and found[0]["status"] != "pending":
                    break
                assert time.monotonic() < deadline, f"still pending: {found}"
                await asyncio.sleep(0.5)
    [delivery] = found
    assert delivery["status"] == "delivered", delivery
    assert delivery["attempts"] >= 2
    answered = [status for name, _, _, status in receiver.received if name == "crash"]
    assert answered.count(204) == 1, answered
    assert answered[0] == 503
