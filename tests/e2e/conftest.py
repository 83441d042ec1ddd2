"""An isolated copy of the whole system for e2e tests: the five services and two executors on
free ports, with their own topic prefix and database, against the test run's Kafka and store.
Started once per session, stopped by PID afterwards; logs are kept under artifacts/."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from stack_support import Stack

from devstack import services
from devstack.services import ServicePorts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, mongodb_server: str) -> Iterator[Stack]:
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "artifacts" / f"e2e-{run_id}"
    run_dir, log_dir = base / "run", base / "logs"
    run_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True)
    database = f"byt_e2e_{run_id}"
    mongodb_url = f"{mongodb_server}/{database}"
    admin_key = f"bya_e2e_{uuid.uuid4().hex}"
    ports = ServicePorts.pick_free(2)
    prefix = f"e2e{run_id}."
    try:
        services.start_services(
            run_dir=run_dir,
            log_dir=log_dir,
            venv_bin=Path(sys.executable).parent,
            kafka_bootstrap=kafka_bootstrap,
            mongodb_url=mongodb_url,
            admin_key=admin_key,
            executors=2,
            ports=ports,
            extra_env={
                "BATCHYARD_TOPIC_PREFIX": prefix,
                # http.request may call the tests' local servers, and nothing else private
                "BATCHYARD_JOBTYPE_HTTP_ALLOW_HOSTS": "127.0.0.1",
            },
            timeout=120,
        )
        yield Stack(
            url=f"http://127.0.0.1:{ports.api}",
            admin_key=admin_key,
            prefix=prefix,
            mongodb_url=mongodb_url,
            database=database,
            run_dir=run_dir,
            log_dir=log_dir,
            ports=ports,
        )
    finally:
        services.stop_services(run_dir)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client:
        yield client
