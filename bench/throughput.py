"""End-to-end throughput of no-op jobs, against the raw broker, in one run.

    python bench/throughput.py [--jobs 10000] [--executors 2]

Needs Kafka and the store (`make up`, or KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL). It starts an
isolated copy of the services (own topic prefix and database, free ports), submits one batch
of `--jobs` `demo.sleep` jobs with 0 s, and measures from the POST to the read model showing
every job completed. The baseline, on the same broker in the same process tree, is a raw
aiokafka relay: produce N messages, consume each and produce a reply, consume the replies.
Prints jobs/s for both and their ratio (the design's target: within 4x of the relay)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devstack import services
from devstack.services import ServicePorts

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
_MONGO_URL = urlparse(os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017"))
MONGO = f"{_MONGO_URL.scheme}://{_MONGO_URL.netloc}"


async def relay(n: int) -> float:
    """Seconds for n messages to go producer → relay consumer → reply → reply consumer."""
    run = uuid.uuid4().hex[:8]
    requests, replies = f"bench.{run}.requests", f"bench.{run}.replies"
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, linger_ms=2, acks="all")
    relay_in = AIOKafkaConsumer(
        requests,
        bootstrap_servers=KAFKA,
        group_id=f"bench-relay-{run}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
    )
    sink = AIOKafkaConsumer(
        replies,
        bootstrap_servers=KAFKA,
        group_id=f"bench-sink-{run}",
        auto_offset_reset="earliest",
    )
    await producer.start()
    await relay_in.start()
    await sink.start()
    try:
        await producer.send_and_wait(requests, b"warm-up")
        await producer.send_and_wait(replies, b"warm-up")

        async def pump() -> None:
            seen = 0
            while seen < n + 1:
                batch = await relay_in.getmany(timeout_ms=500, max_records=1000)
                for records in batch.values():
                    for r in records:
                        await producer.send(replies, r.value, key=r.key)
                    seen += len(records)

        async def drain() -> None:
            seen = 0
            while seen < n + 1:
                batch = await sink.getmany(timeout_ms=500, max_records=1000)
                seen += sum(len(v) for v in batch.values())

        started = time.perf_counter()
        tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
        for i in range(n):
            await producer.send(requests, b'{"seconds": 0}', key=str(i).encode())
        await producer.flush()
        await asyncio.wait_for(asyncio.gather(*tasks), 600)
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await relay_in.stop()
        await sink.stop()


async def batchyard(n: int, url: str, key: str) -> float:
    """Seconds from submitting n no-op jobs to the read model showing them all completed."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as api:
        warm = await api.post(
            "/v1/batches", json={"name": "warm", "job_type": "demo.sleep", "items": [{}]}
        )
        warm.raise_for_status()
        await wait_done(api, warm.json()["id"], 1)
        started = time.perf_counter()
        ids = []
        for start in range(0, n, 10_000):
            size = min(10_000, n - start)
            r = await api.post(
                "/v1/batches",
                json={
                    "name": f"bench-{start}",
                    "job_type": "demo.sleep",
                    "items": [{}] * size,
                    "config": {"max_concurrent_jobs": 10_000},
                },
            )
            r.raise_for_status()
            ids.append((r.json()["id"], size))
        for batch_id, size in ids:
            await wait_done(api, batch_id, size)
        return time.perf_counter() - started


async def wait_done(api: httpx.AsyncClient, batch_id: str, size: int) -> None:
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        if body["status"] in ("completed", "completed_with_errors", "failed"):
            if body["progress"]["completed"] != size:
                raise RuntimeError(f"{batch_id}: {body['progress']}")
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(batch_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every service (repeatable), e.g. BATCHYARD_EXECUTOR_SLOTS=512",
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)

    relay_s = asyncio.run(relay(args.jobs))
    base = Path(tempfile.mkdtemp(prefix="batchyard-bench-"))
    ports = ServicePorts.pick_free(args.executors)
    key = f"bya_bench_{uuid.uuid4().hex}"
    run = uuid.uuid4().hex[:8]
    try:
        services.start_services(
            run_dir=base / "run",
            log_dir=base / "logs",
            venv_bin=Path(sys.executable).parent,
            kafka_bootstrap=KAFKA,
            mongodb_url=f"{MONGO}/bench_{run}",
            admin_key=key,
            executors=args.executors,
            ports=ports,
            extra_env={"BATCHYARD_TOPIC_PREFIX": f"bench{run}.", **extra_env},
            timeout=120,
        )
        by_s = asyncio.run(batchyard(args.jobs, f"http://127.0.0.1:{ports.api}", key))
    finally:
        services.stop_services(base / "run")
    relay_rate, by_rate = args.jobs / relay_s, args.jobs / by_s
    print(f"jobs: {args.jobs}, executors: {args.executors}, logs: {base / 'logs'}")
    print(f"raw aiokafka relay : {relay_rate:10.0f} msgs/s  ({relay_s:.1f} s)")
    print(f"batchyard end-to-end: {by_rate:10.0f} jobs/s  ({by_s:.1f} s)")
    print(f"ratio relay/batchyard: {relay_rate / by_rate:.1f}x  (target: <= 4x)")
    target = 10_000
    print(f"target >= {target} jobs/s: {'PASS' if by_rate >= target else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
