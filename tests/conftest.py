"""Servers for integration and e2e tests: `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL` when set,
else the local dev stack's (started by `make test` or `make up`), else containers started with
testcontainers where a Docker engine answers. A missing server fails the test loudly; nothing
is skipped for lack of one."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
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


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
    first = servers.split(",")[0]
    if _reachable(first):
        yield servers
    elif _docker_engine():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.0").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        pytest.fail(
            f"Kafka is not reachable at {first} and no Docker engine answers: run `make test` "
            "(it starts the servers), `make up`, or set KAFKA_BOOTSTRAP_SERVERS"
        )


@pytest.fixture(scope="session")
def mongodb_server() -> Iterator[str]:
    url = os.environ.get("MONGODB_URL", DEFAULT_MONGO)
    parsed = urlparse(url)
    host_port = parsed.netloc.split("@")[-1].split(",")[0]
    if ":" not in host_port:
        host_port += ":27017"
    if _reachable(host_port):
        yield f"{parsed.scheme}://{parsed.netloc}"
    elif _docker_engine():
        from testcontainers.community.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:8") as mongo:
            yield mongo.get_connection_url().rsplit("/", 1)[0]
    else:
        pytest.fail(
            f"the store is not reachable at {host_port} and no Docker engine answers: run "
            "`make test`, `make up`, or set MONGODB_URL"
        )


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
