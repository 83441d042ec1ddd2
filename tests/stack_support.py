"""Shared by e2e, browser and chaos tests: a handle on a running copy of the system."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from devstack import services
from devstack.services import ServicePorts

ROOT = Path(__file__).resolve().parents[1]

# Every topic prefix this test session used on the shared Kafka; their topics are deleted when
# the session ends (tests/conftest.py), and no other session's.
TOPIC_PREFIXES: set[str] = set()


def topic_prefix(kind: str, run_id: str | None = None) -> str:
    """A topic prefix of this session's own, `<kind><id>.`, remembered for deletion."""
    prefix = f"{kind}{run_id or uuid.uuid4().hex[:8]}."
    TOPIC_PREFIXES.add(prefix)
    return prefix


async def ready_status(url: str) -> int | None:
    """The status a service's `url` (its `/readyz`) answers; None if it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            return (await client.get(url)).status_code
    except httpx.HTTPError:
        return None


@dataclass(frozen=True)
class Stack:
    url: str
    admin_key: str
    prefix: str
    mongodb_url: str
    database: str
    run_dir: Path
    log_dir: Path
    ports: ServicePorts

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


@contextmanager
def service_process(
    script: str, env: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs one service console script from this venv with `env`, logging to `log_path`;
    stops it on exit (SIGTERM, then SIGKILL after 15 s)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / script)], env=dict(env), stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def isolated_stack(
    kind: str,
    kafka_bootstrap: str,
    mongodb_server: str,
    *,
    executors: int,
    extra_env: Mapping[str, str] = {},
) -> Iterator[Stack]:
    """A copy of the whole system of its own (topic prefix, database, ports), for tests that
    would disturb the shared e2e stack: started here, stopped by PID on exit; logs under
    artifacts/<kind>-<id>/."""
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "artifacts" / f"{kind}-{run_id}"
    database = f"byt_{kind}_{run_id}"
    stack = Stack(
        url="",
        admin_key=f"bya_{kind}_{uuid.uuid4().hex}",
        prefix=topic_prefix(kind, run_id),
        mongodb_url=f"{mongodb_server}/{database}",
        database=database,
        run_dir=base / "run",
        log_dir=base / "logs",
        ports=ServicePorts.pick_free(executors),
    )
    stack.run_dir.mkdir(parents=True)
    stack.log_dir.mkdir(parents=True)
    try:
        services.start_services(
            run_dir=stack.run_dir,
            log_dir=stack.log_dir,
            venv_bin=Path(sys.executable).parent,
            kafka_bootstrap=kafka_bootstrap,
            mongodb_url=stack.mongodb_url,
            admin_key=stack.admin_key,
            executors=executors,
            ports=stack.ports,
            extra_env={"BATCHYARD_TOPIC_PREFIX": stack.prefix, **extra_env},
            timeout=120,
        )
        yield Stack(**{**stack.__dict__, "url": f"http://127.0.0.1:{stack.ports.api}"})
    finally:
        services.stop_services(stack.run_dir)
        drop_database(mongodb_server, database)


def drop_database(mongodb_server: str, database: str) -> None:
    """Drops a stopped stack's database: the dev stack's store keeps every database the tests
    made otherwise (a file each). Its services' logs stay under artifacts/; a failure to drop
    is reported, not fatal."""
    client: MongoClient[dict[str, object]] = MongoClient(mongodb_server, timeoutMS=30_000)
    try:
        client.drop_database(database)
    except PyMongoError as exc:
        print(f"\nleft the database {database} in place: {exc!r}", file=sys.stderr)
    finally:
        client.close()
