"""Latency, in one run on an isolated stack:

1. submit → first job running: one-job batches submitted one after another (`--batches`,
   200), from sending the POST to the job's recorded start; p50 and p99.
2. API reads under load: `GET /v1/batches/{id}` at `--rate` requests/s (500) for
   `--seconds` (30) from an open-loop generator on plain asyncio streams (loadgen.py: each
   request is due on its schedule whether or not earlier ones answered, and its latency
   counts from then; 64 keep-alive connections); p50/p99.
3. projection lag under full load: the reporter's `batchyard_projection_lag_seconds`
   histogram over a `--jobs` (5,000) no-op batch; its p99 (from the bucket counts).

    python bench/latency.py [--batches 200] [--rate 500] [--seconds 30] [--jobs 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

import httpx
from benchstack import BenchStack, bench_stack, wait_done
from loadgen import open_loop_gets

NO_RATE_LIMIT = {"BATCHYARD_API_RATE_LIMIT_PER_S": "0"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def submit_to_running(api: httpx.AsyncClient, batches: int) -> list[float]:
    """Seconds from sending each one-job batch to its job's start, one batch at a time."""
    out: list[float] = []
    for n in range(batches):
        sent = time.time()
        r = await api.post(
            "/v1/batches", json={"name": f"lat-{n}", "job_type": "demo.sleep", "items": [{}]}
        )
        r.raise_for_status()
        batch_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while True:
            jobs = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
            started = jobs[0].get("started_at") if jobs else None
            if started:
                out.append(datetime.fromisoformat(started).timestamp() - sent)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(batch_id)
            await asyncio.sleep(0.01)
    return out


async def reads_under_load(
    stack: BenchStack, batch_id: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    """Latencies of reads sent at `rate`/s for `seconds` (from each one's due time), and how
    many failed; see loadgen.py for why not httpx."""
    result = await open_loop_gets(
        "127.0.0.1", stack.ports.api, f"/v1/batches/{batch_id}", stack.headers, rate, seconds
    )
    print(f"reads offered at {result.offered_per_s:.0f}/s")
    return result.latencies, result.failures


def lag_buckets(metrics_text: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("batchyard_projection_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def p99_from_buckets(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the bucket holding the 99th percentile of what was observed between
    the two readings."""
    delta = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    total = delta.get(float("inf"), 0)
    for le in sorted(delta):
        if total and delta[le] >= 0.99 * total:
            return le
    return float("nan")


async def projection_lag(stack: BenchStack, api: httpx.AsyncClient, jobs: int) -> float:
    metrics_url = f"http://127.0.0.1:{stack.ports.reporter}/metrics"
    async with httpx.AsyncClient(timeout=10) as plain:
        before = lag_buckets((await plain.get(metrics_url)).text)
        r = await api.post(
            "/v1/batches",
            json={
                "name": "lag",
                "job_type": "demo.sleep",
                "items": [{}] * jobs,
                "config": {"max_concurrent_jobs": 10_000},
            },
        )
        r.raise_for_status()
        await wait_done(api, r.json()["id"], jobs)
        after = lag_buckets((await plain.get(metrics_url)).text)
    return p99_from_buckets(before, after)


async def run(stack: BenchStack, args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=stack.url, headers=stack.headers, timeout=30, limits=limits
    ) as api:
        submit = await submit_to_running(api, args.batches)
        figures |= {"submit_p50_s": statistics.median(submit), "submit_p99_s": pct(submit, 99)}
        target = (await api.get("/v1/batches", params={"limit": 1})).json()["items"][0]["id"]
        reads, failures = await reads_under_load(stack, target, args.rate, args.seconds)
        figures |= {
            "read_p50_s": statistics.median(reads),
            "read_p99_s": pct(reads, 99),
            "reads": len(reads),
            "read_failures": failures,
        }
        figures["projection_lag_p99_s"] = await projection_lag(stack, api, args.jobs)
    return figures


def report(f: dict[str, float]) -> None:
    def line(name: str, value: float, target: float, *, bound: bool = False) -> None:
        # a histogram bucket's bound is an upper bound: it passes at the target itself
        ok = value <= target if bound else value < target
        sign = "<=" if bound else "<"
        print(
            f"{name:34s} {value * 1000:9.1f} ms   target {sign} {target * 1000:.0f} ms  "
            f"{'PASS' if ok else 'FAIL'}"
        )

    line("submit -> first running p50", f["submit_p50_s"], 0.050)
    print(f"{'submit -> first running p99':34s} {f['submit_p99_s'] * 1000:9.1f} ms")
    print(f"API reads: {f['reads']:.0f} answered, {f['read_failures']:.0f} failed")
    print(f"{'API read p50':34s} {f['read_p50_s'] * 1000:9.1f} ms")
    line("API read p99 at the offered rate", f["read_p99_s"], 0.020)
    line("projection lag p99 (bucket bound)", f["projection_lag_p99_s"], 1.0, bound=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with bench_stack(2, NO_RATE_LIMIT) as stack:
        figures = asyncio.run(run(stack, args))
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
