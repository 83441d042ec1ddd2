"""Servers for integration, e2e and browser tests: `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL` when set,
else the local dev stack's (started by `make test` or `make up`), else containers started with
testcontainers where a Docker engine answers. A missing server fails the test loudly; nothing
is skipped for lack of one."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from stack_support import TOPIC_PREFIXES, Stack, drop_database, topic_prefix

from contracts.topics import Topics
from devstack import services
from devstack.services import ServicePorts
from servicekit.kafka import delete_topics_blocking

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017"
ROOT = Path(__file__).resolve().parents[1]


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


def _delete_test_topics(servers: str) -> None:
    """A shared Kafka (the dev stack's) keeps every topic a test created; thousands of them
    make it slow to start (over a minute at 13,000 partitions). This session's are deleted
    when it ends (by the prefixes it used, so a session running beside it keeps its own); a
    failure to delete is reported, not fatal."""
    prefixes = tuple(TOPIC_PREFIXES)
    if not prefixes:
        return
    try:
        deleted = delete_topics_blocking(servers, lambda name: name.startswith(prefixes))
    except Exception as exc:  # the broker went away: the topics stay, the results stand
        print(f"\nleft the tests' Kafka topics in place: {exc!r}", file=sys.stderr)
    else:
        print(f"\ndeleted {len(deleted)} Kafka topics made by this session", file=sys.stderr)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
    first = servers.split(",")[0]
    if _reachable(first):
        yield servers
        _delete_test_topics(servers)
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
    return Topics(prefix=topic_prefix("t", unique))


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


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, mongodb_server: str) -> Iterator[Stack]:
    """An isolated copy of the whole system for e2e and browser tests: the five services and two
    executors on free ports, with their own topic prefix and database, against the run's Kafka
    and store. Started once per session, stopped by PID; logs are kept under artifacts/."""
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "artifacts" / f"e2e-{run_id}"
    run_dir, log_dir = base / "run", base / "logs"
    run_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True)
    database = f"byt_e2e_{run_id}"
    mongodb_url = f"{mongodb_server}/{database}"
    admin_key = f"bya_e2e_{uuid.uuid4().hex}"
    ports = ServicePorts.pick_free(2)
    prefix = topic_prefix("e2e", run_id)
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
                # webhooks likewise; their retries back off from 0.2 s so tests stay short
                "BATCHYARD_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
                "BATCHYARD_WEBHOOK_BACKOFF_S": "0.2",
                # a cap a test can exceed with one inline batch
                "BATCHYARD_API_MAX_EXPORT_JOBS": "5000",
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
        drop_database(mongodb_server, database)
