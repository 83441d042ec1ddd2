"""Every stateful part fails in the middle of one batch: the broker restarts, the store
restarts, the reporter and the scheduler are killed with SIGKILL and started again. The batch
still completes with correct counts and every job ends once, completed, in the read model.

The broker and the store here are private to the test (tests/chaos_infra.py): restarting the
run's shared servers would disturb the other tests."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_infra import PrivateInfra
from chaos_support import env_of, kill_9, restart
from readmodels import settled_job_views
from stack_support import Stack

from devstack import services
from devstack.services import ServicePorts

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = 2
TOTAL = 600


@pytest.fixture
def private_stack() -> Iterator[tuple[Stack, PrivateInfra]]:
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "artifacts" / f"chaos-infra-{run_id}"
    infra = PrivateInfra(ROOT, base / "infra")
    database = f"byt_chaos_{run_id}"
    stack = Stack(
        url="",
        admin_key=f"bya_chaos_{uuid.uuid4().hex}",
        prefix=f"chaos{run_id}.",
        mongodb_url=infra.mongodb_url(database),
        database=database,
        run_dir=base / "run",
        log_dir=base / "logs",
        ports=ServicePorts.pick_free(EXECUTORS),
    )
    stack.run_dir.mkdir(parents=True)
    stack.log_dir.mkdir(parents=True)
    try:
        infra.start()
        services.start_services(
            run_dir=stack.run_dir,
            log_dir=stack.log_dir,
            venv_bin=Path(sys.executable).parent,
            kafka_bootstrap=infra.bootstrap_servers,
            mongodb_url=stack.mongodb_url,
            admin_key=stack.admin_key,
            executors=EXECUTORS,
            ports=stack.ports,
            extra_env=env_of(stack),
            timeout=120,
        )
        yield Stack(**{**stack.__dict__, "url": f"http://127.0.0.1:{stack.ports.api}"}), infra
    finally:
        services.stop_services(stack.run_dir)
        infra.stop()


async def batch(api: httpx.AsyncClient, batch_id: str) -> dict[str, Any] | None:
    try:
        r = await api.get(f"/v1/batches/{batch_id}")
    except httpx.TransportError:
        return None
    if r.status_code != 200:
        return None  # the API may be not-ready while the store is down
    body: dict[str, Any] = r.json()
    return body


async def test_broker_store_reporter_and_scheduler_failures_lose_nothing(
    private_stack: tuple[Stack, PrivateInfra],
) -> None:
    stack, infra = private_stack
    faults = [
        ("broker restart", lambda: infra.restart("kafka")),
        ("store restart", lambda: infra.restart("ferretdb")),
        ("scheduler kill -9", lambda: kill_and_restart(stack, infra, "scheduler")),
        ("reporter kill -9", lambda: kill_and_restart(stack, infra, "reporter")),
    ]
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as api:
        r = await api.post(
            "/v1/batches",
            json={
                "name": "chaos-infra",
                "job_type": "demo.sleep",
                "items": [{"seconds": 0.3}] * TOTAL,
                "config": {"max_concurrent_jobs": 25},
            },
        )
        assert r.status_code == 201, r.text
        batch_id = r.json()["id"]
        done_faults: list[str] = []
        deadline = time.monotonic() + 420
        body = await batch(api, batch_id)
        while body is None or body["status"] not in (
            "completed",
            "completed_with_errors",
            "failed",
        ):
            assert time.monotonic() < deadline, f"stuck after {done_faults}: {body}"
            if body is not None and faults:
                completed = body["progress"]["completed"]
                if completed >= (len(done_faults) + 1) * TOTAL // 8:
                    name, fault = faults.pop(0)
                    await asyncio.to_thread(fault)
                    done_faults.append(name)
            await asyncio.sleep(0.5)
            body = await batch(api, batch_id)
        assert not faults, f"the batch finished before every fault; done: {done_faults}"
        assert body["status"] == "completed", body
        assert body["progress"]["completed"] == TOTAL
        assert body["progress"]["failed"] == 0

    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == TOTAL and all(v["status"] == "completed" for v in vs),
    )
    assert sorted(v["index"] for v in views) == list(range(TOTAL))
    assert all(v["status"] == "completed" for v in views)


def kill_and_restart(stack: Stack, infra: PrivateInfra, name: str) -> None:
    kill_9(stack, name)
    time.sleep(1)
    restart(stack, name, infra.bootstrap_servers)
