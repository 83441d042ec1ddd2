"""End-to-end throughput of no-op jobs, against the raw broker and Celery, in one run.

    python bench/throughput.py [--jobs 10000] [--executors 2] [--no-celery] [--warm-up N]

Needs Kafka and the store (`make up`, or KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL). It starts an
isolated copy of the services (own topic prefix and database, free ports), submits batches of
`--jobs` `demo.sleep` jobs with 0 s in all, and measures from the first POST to the read model
showing every job completed. Baselines in the same process tree: a raw aiokafka relay on the
same broker (produce N messages, consume each and produce a reply, consume the replies), and
Celery running the same N no-op tasks as a group with result tracking on Redis
(bench/celery_baseline.py). A broker just started used about twice the CPU per message in
its first runs (docs/performance.md, sessions 11 and 12), so an unreported Batchyard run of
`--warm-up` jobs (as many as `--jobs` by default; 0 skips it), on a stack of its own that is
stopped before the baselines run, comes first. Prints the rates, the ratios and PASS/FAIL
for the design's targets (>= 10,000 jobs/s, >= 3x Celery, within 4x of the relay);
`--json FILE` also writes them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from benchstack import KAFKA, bench_stack, wait_done
from celery_baseline import celery_seconds

RELAY_PARTITIONS = 6  # devstack's num.partitions, which the relay had when topics made themselves


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
    async with contextlib.AsyncExitStack() as running:
        # Both topics are made, and a message sent to each of their partitions, before the
        # clock starts: a topic just made is missing from the first metadata answers and its
        # leaders may refuse the first sends for a moment. The clients retry, logging each
        # time: those warnings are silenced here, and only here.
        aiokafka_log = logging.getLogger("aiokafka")
        level = aiokafka_log.level
        aiokafka_log.setLevel(logging.ERROR)
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
            await admin.start()
            try:
                await admin.create_topics(
                    [NewTopic(t, RELAY_PARTITIONS, 1) for t in (requests, replies)]
                )
            finally:
                await admin.close()
            await producer.start()
            running.push_async_callback(producer.stop)
            for topic in (requests, replies):
                for partition in range(RELAY_PARTITIONS):
                    await producer.send_and_wait(topic, b"warm-up", partition=partition)
        finally:
            aiokafka_log.setLevel(level)
        for consumer in (relay_in, sink):
            await consumer.start()
            running.push_async_callback(consumer.stop)

        async def pump() -> None:
            seen = 0  # the requests' warm-ups are relayed too
            while seen < n + RELAY_PARTITIONS:
                batch = await relay_in.getmany(timeout_ms=500, max_records=1000)
                for records in batch.values():
                    for r in records:
                        await producer.send(replies, r.value, key=r.key)
                    seen += len(records)

        async def drain() -> None:
            seen = 0  # both topics' warm-ups arrive here
            while seen < n + 2 * RELAY_PARTITIONS:
                batch = await sink.getmany(timeout_ms=500, max_records=1000)
                seen += sum(len(v) for v in batch.values())

        started = time.perf_counter()
        tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
        for i in range(n):
            await producer.send(requests, b'{"seconds": 0}', key=str(i).encode())
        await producer.flush()
        await asyncio.wait_for(asyncio.gather(*tasks), 600)
        return time.perf_counter() - started


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--no-celery", action="store_true", help="skip the Celery baseline")
    parser.add_argument(
        "--warm-up",
        type=int,
        help="jobs run through Batchyard before measuring, not reported "
        "(default: as many as --jobs; 0: none)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every service (repeatable), e.g. BATCHYARD_EXECUTOR_SLOTS=512",
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    warm_up = args.jobs if args.warm_up is None else args.warm_up
    if warm_up < 0:
        parser.error("--warm-up must be 0 or more")
    figures = measure(
        args.jobs, args.executors, extra_env, celery=not args.no_celery, warm_up=warm_up
    )
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def measure(
    jobs: int, executors: int, extra_env: dict[str, str], *, celery: bool, warm_up: int = 0
) -> dict[str, float]:
    figures: dict[str, float] = {"jobs": jobs, "executors": executors, "warm_up": warm_up}
    if warm_up:
        with bench_stack(executors, extra_env) as stack:
            warm_s = asyncio.run(batchyard(warm_up, stack.url, stack.key))
        print(f"warm-up: {warm_up} jobs in {warm_s:.1f} s (not reported)")
    relay_s = asyncio.run(relay(jobs))
    figures["relay_per_s"] = jobs / relay_s
    if celery:
        figures["celery_per_s"] = jobs / celery_seconds(jobs)
    with bench_stack(executors, extra_env) as stack:
        by_s = asyncio.run(batchyard(jobs, stack.url, stack.key))
    figures["batchyard_per_s"] = jobs / by_s
    return figures


def report(f: dict[str, float]) -> None:
    by, relay_rate = f["batchyard_per_s"], f["relay_per_s"]
    print(
        f"jobs: {f['jobs']:.0f}, executors: {f['executors']:.0f}, "
        f"after a warm-up of {f.get('warm_up', 0):.0f} jobs"
    )
    print(f"raw aiokafka relay  : {relay_rate:10.0f} msgs/s")
    if "celery_per_s" in f:
        print(f"celery (redis)      : {f['celery_per_s']:10.0f} tasks/s")
    print(f"batchyard end-to-end: {by:10.0f} jobs/s")
    print(
        f"relay / batchyard   : {relay_rate / by:10.1f}x   target <= 4x    "
        f"{'PASS' if relay_rate / by <= 4 else 'FAIL'}"
    )
    if "celery_per_s" in f:
        print(
            f"batchyard / celery  : {by / f['celery_per_s']:10.2f}x   target >= 3x    "
            f"{'PASS' if by >= 3 * f['celery_per_s'] else 'FAIL'}"
        )
    print(
        f"batchyard jobs/s    : {by:10.0f}    target >= 10000 {'PASS' if by >= 10_000 else 'FAIL'}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
