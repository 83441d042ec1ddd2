"""Where the time of one small batch goes, hop by hop: one-job batches are submitted one
after another, and the first record of each event type for the batch is timed by its Kafka
timestamp (the producer's clock; every process runs on this machine), from the moment the
POST was sent. p50 and p99 per event type, in the order they happen. `--items N` gives each
batch N jobs (at most 10,000, the inline limit): how long a large batch takes to start.

    python bench/hops.py [--batches 30] [--gap 0.5] [--items 1]  # an isolated stack
    python bench/hops.py --url URL --key KEY [--prefix P]        # a running stack (`make up`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
from aiokafka import AIOKafkaConsumer
from benchstack import KAFKA, bench_stack
from latency import NO_RATE_LIMIT, pct

from contracts.topics import Topics


async def timeline(
    url: str, key: str, prefix: str, batches: int, gap_s: float = 0.0, items: int = 1
) -> dict[str, list[float]]:
    """Milliseconds from each POST to each event type's first record, by event type. With
    `gap_s`, each POST waits that long after the previous batch completed (a quiet system)."""
    topics = Topics(prefix)
    consumer = AIOKafkaConsumer(
        topics.batch_commands,
        topics.batch_events,
        topics.job_dispatch,
        topics.job_events,
        bootstrap_servers=KAFKA,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    times: dict[str, list[float]] = {"POST answered": []}
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        await consumer.getmany(timeout_ms=500)  # positions set at the end of every partition
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
            for n in range(batches):
                await asyncio.sleep(gap_s)
                sent = time.time()
                r = await api.post(
                    "/v1/batches",
                    json={
                        "name": f"hops-{n}",
                        "job_type": "demo.sleep",
                        "items": [{}] * items,
                        "config": {"max_concurrent_jobs": 10_000},
                    },
                )
                r.raise_for_status()
                times["POST answered"].append((time.time() - sent) * 1000)
                batch_id = r.json()["id"].encode()
                seen: dict[str, float] = {}
                deadline = time.monotonic() + 30
                while "JobCompleted" not in seen and time.monotonic() < deadline:
                    for records in (await consumer.getmany(timeout_ms=100)).values():
                        for record in records:
                            if record.value is None or batch_id not in record.value:
                                continue
                            kind = json.loads(record.value)["type"]
                            seen.setdefault(kind, record.timestamp / 1000)
                for kind, at in seen.items():
                    times.setdefault(kind, []).append((at - sent) * 1000)
    finally:
        await consumer.stop()
    return times


def report(times: dict[str, list[float]]) -> None:
    def p50(values: list[float]) -> float:
        return pct(values, 50)

    print(f"{'from the POST sent to':28s} {'p50':>9s} {'p99':>9s}   n")
    for kind, values in sorted(times.items(), key=lambda kv: p50(kv[1])):
        print(f"{kind:28s} {p50(values):7.1f}ms {pct(values, 99):7.1f}ms  {len(values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--prefix", default="")
    parser.add_argument(
        "--gap", type=float, default=0.0, help="seconds between one batch's end and the next POST"
    )
    parser.add_argument("--items", type=int, default=1, help="jobs per batch (1 to 10,000)")
    args = parser.parse_args()
    if not 1 <= args.items <= 10_000:
        parser.error("--items must be between 1 and 10,000")
    if args.url:
        times = asyncio.run(
            timeline(args.url, args.key, args.prefix, args.batches, args.gap, args.items)
        )
    else:
        with bench_stack(2, NO_RATE_LIMIT) as stack:
            times = asyncio.run(
                timeline(
                    stack.url, stack.key, stack.topic_prefix, args.batches, args.gap, args.items
                )
            )
    report(times)


if __name__ == "__main__":
    main()
