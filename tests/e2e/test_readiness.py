"""A service that cannot reach Kafka or the store reports not-ready instead of crashing, and
recovers when they return. The test puts TCP proxies between the reporter and the servers and
opens and closes them."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest
from stack_support import ready_status, service_process, topic_prefix
from tcp_proxy import Proxy

from devstack.probes import free_port

pytestmark = pytest.mark.e2e


async def wait_status(url: str, status: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    seen = None
    while time.monotonic() < deadline:
        seen = await ready_status(url)
        if seen == status:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{url} answered {seen}, not {status}, within {within_s}s")


async def test_not_ready_without_servers_then_recovers(
    kafka_bootstrap: str, mongodb_server: str, tmp_path: Path
) -> None:
    kafka = Proxy(kafka_bootstrap.split(",")[0])
    store = Proxy(mongodb_server.split("://", 1)[1])
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka.port}",
        "MONGODB_URL": f"mongodb://127.0.0.1:{store.port}/byt_ready_{uuid.uuid4().hex[:8]}",
        "BATCHYARD_TOPIC_PREFIX": topic_prefix("ready"),
        "BATCHYARD_HTTP_PORT": str(port),
    }
    url = f"http://127.0.0.1:{port}/readyz"
    with service_process("batchyard-reporter", env, tmp_path / "reporter.log") as service:
        try:
            await wait_status(url, 503, within_s=30)
            await asyncio.sleep(5)
            assert service.poll() is None, "the service crashed without its servers"
            assert await ready_status(url) == 503

            await kafka.open()
            await store.open()
            await wait_status(url, 200, within_s=60)

            await store.close()
            await wait_status(url, 503, within_s=30)
            assert service.poll() is None, "the service crashed when the store went away"

            await store.open()
            await wait_status(url, 200, within_s=60)
        finally:
            await kafka.close()
            await store.close()
