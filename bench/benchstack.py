"""An isolated copy of the Batchyard services for a benchmark (own topic prefix, database and
free ports) on the Kafka and store of `make up` (or KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL),
stopped by PID on exit, then its topics deleted and its database dropped (unless
BENCH_KEEP_DB is set: a million-job run leaves about a gigabyte) and its logs removed (kept,
and their folder named, when the benchmark failed); and the waits the benchmarks share."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
from pymongo import MongoClient

from devstack import processes, services
from devstack.services import ServicePorts
from servicekit.kafka import delete_topics_blocking

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
_MONGO_URL = urlparse(os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017"))
MONGO = f"{_MONGO_URL.scheme}://{_MONGO_URL.netloc}"
FINISHED = ("completed", "completed_with_errors", "failed", "cancelled")


@dataclass(frozen=True)
class BenchStack:
    url: str
    key: str
    run_dir: Path
    log_dir: Path
    ports: ServicePorts
    topic_prefix: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def pids(self) -> dict[str, int]:
        """Each running service's PID, by name."""
        found = {}
        for name in processes.list_names(self.run_dir):
            record = processes.read_record(self.run_dir, name)
            if record is not None:
                found[name] = record.pid
        return found


@contextmanager
def bench_stack(executors: int, extra_env: Mapping[str, str] | None = None) -> Iterator[BenchStack]:
    base = Path(tempfile.mkdtemp(prefix="batchyard-bench-"))
    ports = ServicePorts.pick_free(executors)
    key = f"bya_bench_{uuid.uuid4().hex}"
    run = uuid.uuid4().hex[:8]
    failed = False
    try:
        services.start_services(
            run_dir=base / "run",
            log_dir=base / "logs",
            venv_bin=Path(sys.executable).parent,
            kafka_bootstrap=KAFKA,
            mongodb_url=f"{MONGO}/bench_{run}",
            admin_key=key,
            executors=executors,
            ports=ports,
            extra_env={"BATCHYARD_TOPIC_PREFIX": f"bench{run}.", **(extra_env or {})},
            timeout=120,
        )
        yield BenchStack(
            f"http://127.0.0.1:{ports.api}", key, base / "run", base / "logs", ports, f"bench{run}."
        )
    except BaseException:
        failed = True
        raise
    finally:
        services.stop_services(base / "run")
        if failed:
            print(f"the services' logs are kept in {base / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
        try:
            delete_topics_blocking(KAFKA, lambda name: name.startswith(f"bench{run}."))
        except Exception as exc:  # the broker went away: report it, still drop the database
            print(f"left the topics bench{run}.* in place: {exc!r}", file=sys.stderr)
        if not os.environ.get("BENCH_KEEP_DB"):
            with MongoClient(MONGO, serverSelectionTimeoutMS=10_000) as client:
                client.drop_database(f"bench_{run}")


async def wait_done(
    api: httpx.AsyncClient, batch_id: str, size: int, within_s: float = 7200
) -> None:
    """Until the batch finished with every one of its `size` jobs completed."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        if body["status"] in FINISHED:
            if body["progress"]["completed"] != size:
                raise RuntimeError(f"{batch_id}: {body['status']} {body['progress']}")
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(batch_id)
