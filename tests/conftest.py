"""Servers for integration and e2e tests: `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL` when set,
else the local dev stack's (started by `make test` or `make up`). A missing server fails the
test loudly; nothing is skipped for lack of one."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlparse

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from contracts.topics import Topics

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017"


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
    first = servers.split(",")[0]
    if not _reachable(first):
        pytest.fail(
            f"Kafka is not reachable at {first}: run `make test` (it starts the servers), "
            "`make up`, or set KAFKA_BOOTSTRAP_SERVERS"
        )
    return servers


@pytest.fixture(scope="session")
def mongodb_server() -> str:
    url = os.environ.get("MONGODB_URL", DEFAULT_MONGO)
    parsed = urlparse(url)
    host_port = parsed.netloc.split("@")[-1].split(",")[0]
    if ":" not in host_port:
        host_port += ":27017"
    if not _reachable(host_port):
        pytest.fail(
            f"the store is not reachable at {host_port}: run `make test`, `make up`, or set "
            "MONGODB_URL"
        )
    return f"{parsed.scheme}://{parsed.netloc}"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topics(unique: str) -> Topics:
    return Topics(prefix=f"t{unique}.")


@pytest.fixture
async def db(mongodb_server: str, unique: str) -> AsyncIterator[AsyncDatabase[dict[str, object]]]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_server, tz_aware=True)
    name = f"byt_{unique}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture(scope="session")
def free_port() -> Iterator[object]:
    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port

    return pick
