"""Periodic retention runs on the scheduler's leader only, at most once per period, also
across a failover: on a stack of its own with a 3-second period and a standby scheduler."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from chaos_support import kill_9
from jobs_support import wait_for_status
from stack_support import Stack, isolated_stack, service_process

from devstack.probes import free_port

pytestmark = pytest.mark.e2e
PERIOD_S = 3.0
ENV = {
    "BATCHYARD_SCHEDULER_RETENTION_PERIOD_S": str(PERIOD_S),
    "BATCHYARD_SCHEDULER_RETENTION_CHECK_S": "0.3",
    "BATCHYARD_SCHEDULER_LEADER_TTL_S": "4",
    "BATCHYARD_SCHEDULER_LEASE_S": "3",
}


@pytest.fixture(scope="module")
def retention_stack(kafka_bootstrap: str, mongodb_server: str) -> Iterator[Stack]:
    with isolated_stack(
        "retention", kafka_bootstrap, mongodb_server, executors=1, extra_env=ENV
    ) as stack:
        yield stack


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def scrape(port: int) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


async def finished_batch(api: httpx.AsyncClient, within_s: float = 90) -> str:
    body = {"name": "old", "job_type": "demo.sleep", "items": [{"seconds": 0}] * 2}
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    batch_id = str(response.json()["id"])
    await wait_for_status(api, batch_id, {"completed"}, within_s)
    return batch_id


async def scheduled_runs(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    runs = (await api.get("/v1/retention/runs")).json()
    return sorted((r for r in runs if r["trigger"] == "schedule"), key=lambda r: r["started_at"])


@pytest.mark.timeout(480)
async def test_periodic_runs_happen_on_the_leader_only_once_per_period(
    retention_stack: Stack, kafka_bootstrap: str
) -> None:
    stack = retention_stack
    standby_port = free_port()
    env = {
        **os.environ,
        **ENV,
        "BATCHYARD_TOPIC_PREFIX": stack.prefix,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": stack.mongodb_url,
        "BATCHYARD_HTTP_PORT": str(standby_port),
        "BATCHYARD_INSTANCE_ID": "scheduler-standby",
        "PYTHONUNBUFFERED": "1",  # its log survives however it ends
    }
    with service_process("batchyard-scheduler", env, stack.log_dir / "scheduler-standby.log"):
        async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=60) as api:
            first = await finished_batch(api)
            policy = {"enabled": True, "archive_after_days": 1e-6, "delete_archived_after_days": 1}
            assert (await api.put("/v1/retention", json=policy)).status_code == 200
            await wait_for_status(api, first, {"archived"}, 30)

            leader = await scrape(stack.ports.scheduler)
            standby = await scrape(standby_port)
            assert metric(leader, "batchyard_scheduler_leader") == 1
            assert metric(leader, "batchyard_retention_runs_total", trigger="schedule") >= 1
            assert metric(leader, "batchyard_retention_batches_total", action="archived") >= 1
            assert metric(standby, "batchyard_scheduler_leader") == 0
            assert metric(standby, "batchyard_retention_runs_total") == 0

            # the standby takes over; its runs keep the period recorded by the old leader
            kill_9(stack, "scheduler")
            # (a takeover waits for the lease to expire and the consumer groups to rebalance)
            second = await finished_batch(api, within_s=180)
            await wait_for_status(api, second, {"archived"}, 60)
            standby = await scrape(standby_port)
            assert metric(standby, "batchyard_scheduler_leader") == 1
            assert metric(standby, "batchyard_retention_runs_total", trigger="schedule") >= 1
            await asyncio.sleep(PERIOD_S * 2)
            runs = await scheduled_runs(api)

    assert len(runs) >= 3, runs
    starts = [datetime.fromisoformat(r["started_at"]) for r in runs]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= PERIOD_S - 0.05, gaps  # never twice within a period
    assert all(r["dry_run"] is False for r in runs)
    audit = (await _audit(stack)).get("items", [])
    assert {e["resource"] for e in audit if e["action"] == "retention.run"} >= {
        r["run_id"] for r in runs
    }


async def _audit(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as api:
        response = await api.get("/v1/audit", params={"limit": 500})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body
