"""Helpers of the chaos tests: kill a service by PID and start it again, run a standby
scheduler beside the stack's."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from stack_support import Stack, service_process

from devstack import processes, services
from devstack.probes import free_port, port_free

# Short job leases and scheduler lease, so that failures heal within seconds.
CHAOS_ENV = {"BATCHYARD_SCHEDULER_LEASE_S": "3", "BATCHYARD_SCHEDULER_LEADER_TTL_S": "4"}


def env_of(stack: Stack) -> dict[str, str]:
    return {"BATCHYARD_TOPIC_PREFIX": stack.prefix, **CHAOS_ENV}


def kill_9(stack: Stack, name: str) -> None:
    record = processes.read_record(stack.run_dir, name)
    assert record is not None
    assert processes.verify(record)
    os.kill(record.pid, signal.SIGKILL)


def restart(
    stack: Stack, name: str, kafka_bootstrap: str, extra_env: Mapping[str, str] | None = None
) -> None:
    for _ in range(50):
        if not processes.is_running(name, stack.run_dir):
            break
        time.sleep(0.1)
    processes.remove_record(stack.run_dir, name)
    spec = services.spec_for(name, stack.ports)
    # an executor's fork server dies with it, but a moment later: it holds the port till then
    for _ in range(100):
        if port_free(spec.port, spec.host):
            break
        time.sleep(0.1)
    services.start_service(
        spec,
        run_dir=stack.run_dir,
        log_dir=stack.log_dir,
        venv_bin=Path(sys.executable).parent,
        kafka_bootstrap=kafka_bootstrap,
        mongodb_url=stack.mongodb_url,
        admin_key=None,
        extra_env={**env_of(stack), **(extra_env or {})},
    )


@contextmanager
def standby_scheduler(stack: Stack, kafka_bootstrap: str) -> Iterator[str]:
    """A second scheduler beside the stack's, for failover tests (ended on leaving); yields
    its readiness URL."""
    port = free_port()
    env = {
        **os.environ,
        **env_of(stack),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": stack.mongodb_url,
        "BATCHYARD_HTTP_PORT": str(port),
        "BATCHYARD_INSTANCE_ID": "scheduler-standby",
    }
    with service_process("batchyard-scheduler", env, stack.log_dir / "scheduler-standby.log"):
        yield f"http://127.0.0.1:{port}/readyz"


async def wait_standby(ready_url: str, within_s: float = 60) -> None:
    """Until the scheduler at `ready_url` says it stands by (another holds the lease)."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=3) as client:
        while True:
            try:
                r = await client.get(ready_url)
                if r.status_code == 503 and "standby" in r.json()["detail"]:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the second scheduler never reported standby"
            await asyncio.sleep(0.5)


async def create_batch(api: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Creates a batch (`POST /v1/batches` with `body`); its id."""
    r = await api.post("/v1/batches", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
